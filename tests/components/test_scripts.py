"""Scripts and command lines as works, on a real Dask cluster: arguments, streamed output, exit codes, stop."""

from __future__ import annotations

import textwrap

import pytest
from components_support import RunWork, wait_for

from lightnb import AppFailed, LightningApp, LightningFlow
from lightnb.components import PopenPythonScript, ShellWork, TracerPythonScript


def write(folder, name: str, code: str) -> str:
    path = folder / name
    path.write_text(textwrap.dedent(code))
    return str(path)


class RunOnce(LightningFlow):
    """Runs its work once and ends the app when the work has finished (whatever the outcome)."""

    def __init__(self, work):
        super().__init__()
        self.work = work

    def run(self):
        self.work.run()
        if self.work.status.stage in ("succeeded", "failed", "stopped"):
            self.stop("done")


class ArgsFromState(LightningFlow):
    """Runs the script with arguments built from the flow's state (what a form would change)."""

    def __init__(self, work):
        super().__init__()
        self.work = work
        self.lr = 0.1
        self.runs = 0

    def run(self):
        self.work.run(script_args=["--lr", str(self.lr)])
        if self.work.has_succeeded:
            self.runs = 1 if self.lr == 0.1 else 2
        if self.runs == 2:
            self.stop("both runs done")


@pytest.fixture
def project(tmp_path):
    """A script with a sibling module, as a user's project folder would have."""
    write(tmp_path, "helper.py", "GREETING = 'hello from helper'\n")
    write(tmp_path, "train.py", """
        import os, sys
        import helper

        print("argv:", sys.argv[1:])
        print("name:", __name__)
        print("cwd:", os.getcwd())
        print(helper.GREETING)
        print("to stderr", file=sys.stderr)
        score = 0.5 * len(sys.argv)
        artifact = {"args": sys.argv[1:]}
        if "--fail" in sys.argv:
            raise ValueError("the script failed on purpose")
        if "--exit" in sys.argv:
            print("about to exit", file=sys.stderr)
            sys.exit(3)
    """)
    return tmp_path


def test_tracer_runs_a_script_unchanged_with_arguments_and_outputs(cluster, project):
    work = TracerPythonScript("train.py", script_args=["--epochs", "2", "a b"], outputs=["score", "artifact"],
                              cwd=project, env={"LIGHTNB_TEST_VAR": "1"})
    app = LightningApp(RunOnce(work), cluster=cluster)
    app.start()
    app.wait(120)
    assert work.has_succeeded, work.status.message
    log = "\n".join(app.logs("root.work"))
    assert "argv: ['--epochs', '2', 'a b']" in log
    assert "name: __main__" in log
    assert f"cwd: {project}" in log
    assert "hello from helper" in log
    assert "to stderr" in log
    assert work.score == 2.0
    assert work.artifact == {"args": ["--epochs", "2", "a b"]}
    assert work.exit_code == 0


def test_a_non_zero_exit_fails_the_work_with_the_end_of_stderr(cluster, project):
    work = TracerPythonScript("train.py", script_args=["--exit"], cwd=project, raise_exception=False)
    app = LightningApp(RunOnce(work), cluster=cluster)
    app.start()
    app.wait(120)
    assert work.has_failed
    assert "exited with code 3" in work.status.message
    assert "about to exit" in work.status.message
    assert work.exit_code == 3


def test_an_exception_in_the_script_fails_the_app_with_its_traceback(cluster, project):
    work = TracerPythonScript("train.py", script_args=["--fail"], cwd=project)
    app = LightningApp(RunOnce(work), cluster=cluster)
    app.start()
    with pytest.raises(AppFailed) as failure:
        app.wait(120)
    message = str(failure.value)
    assert "ValueError: the script failed on purpose" in message
    assert 'File "train.py", line' in message
    assert "_tracer" not in message  # the runner's own frames are not the user's business


def test_a_missing_script_says_where_it_looked(cluster, tmp_path):
    work = PopenPythonScript("nowhere.py", cwd=tmp_path, raise_exception=False)
    app = LightningApp(RunOnce(work), cluster=cluster)
    app.start()
    app.wait(120)
    assert work.has_failed
    assert "nowhere.py" in work.status.message and str(tmp_path) in work.status.message


def test_script_arguments_come_from_state(cluster, project):
    write(project, "show.py", "import sys; print('lr is', sys.argv[2])\n")
    flow = ArgsFromState(PopenPythonScript("show.py", cwd=project))
    app = LightningApp(flow, cluster=cluster)
    app.start()
    wait_for(lambda: flow.runs == 1, what="the first run")
    flow.lr = 0.01  # as a form would: the flow reacts and runs the script with the new argument
    app.wait(120)
    log = "\n".join(app.logs("root.work"))
    assert "lr is 0.1" in log and "lr is 0.01" in log
    assert flow.work.script_args == ["--lr", "0.01"]


def test_shell_command_streams_output_as_printed_and_stops_its_whole_tree(cluster, client, worker_processes):
    # The shell starts a child (sleep); both must end on stop().
    work = ShellWork("echo ready; echo warming up >&2; sleep 600 | cat; echo never", parallel=True)
    app = LightningApp(RunWork(work), cluster=cluster)
    app.start()
    try:
        wait_for(lambda: "ready" in app.logs("root.work"), what="the command's first line while it runs")
        assert "warming up" in app.logs("root.work")
        assert work.is_running
        assert len(worker_processes.started()) >= 3  # sh, sleep, cat
        work.stop()
        wait_for(lambda: work.has_stopped, timeout=30, what="the work to stop")
        worker_processes.assert_none_left()
        assert "never" not in app.logs("root.work")
    finally:
        app.stop()


def test_shell_command_exit_code_and_list_form(cluster, tmp_path):
    failing = ShellWork("ls no-such-file-here", cwd=tmp_path, raise_exception=False)
    app = LightningApp(RunOnce(failing), cluster=cluster)
    app.start()
    app.wait(120)
    assert failing.has_failed and failing.exit_code == 2
    assert "exited with code 2" in failing.status.message
    assert "no-such-file-here" in failing.status.message

    listed = ShellWork(["python", "-c", "import sys; print(sys.argv[1:])", "x y", "$HOME"])
    app = LightningApp(RunOnce(listed), cluster=cluster)
    app.start()
    app.wait(120)
    assert listed.has_succeeded
    assert "['x y', '$HOME']" in app.logs("root.work")


def test_stopping_the_app_ends_a_script_and_the_processes_it_started(cluster, project, worker_processes):
    write(project, "spawner.py", """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print("child started", child.pid, flush=True)
        time.sleep(600)
    """)
    work = TracerPythonScript("spawner.py", cwd=project, parallel=True)
    app = LightningApp(RunWork(work), cluster=cluster)
    app.start()
    wait_for(lambda: any("child started" in line for line in app.logs("root.work")), what="the script's child")
    assert len(worker_processes.started()) >= 2
    app.stop()
    assert app.stage == "stopped"
    assert work.has_stopped
    worker_processes.assert_none_left()


def test_bad_arguments_are_refused_with_the_culprit_named():
    with pytest.raises(TypeError, match="script_args"):
        PopenPythonScript("x.py", script_args=3)
    with pytest.raises(ValueError, match="outputs"):
        TracerPythonScript("x.py", outputs=["not a name"])
    with pytest.raises(TypeError, match="command"):
        ShellWork(42)
    with pytest.raises(ValueError, match="empty"):
        ShellWork("  ")


def test_a_process_that_exits_ends_the_process_trees_its_works_started(tmp_path):
    """A worker process that exits (normally, not killed) takes the trees its works started with it. The exit
    hook comes with the first tree, once: importing lightnb registers none of its own."""
    import atexit
    import os
    import subprocess
    import sys
    import time

    import psutil

    program = textwrap.dedent("""
        import atexit, sys
        import lightnb.components.scripts as scripts
        before = atexit._ncallbacks()
        sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
        tree = scripts.ProcessTree(sleeper, work=None).start()
        assert atexit._ncallbacks() == before + 1, "the first tree registers the exit hook"
        quick = scripts.ProcessTree([sys.executable, "-c", "pass"], work=None).start()
        quick.wait()
        assert atexit._ncallbacks() == before + 1, "the exit hook is registered once"
        print(tree.pid, flush=True)
    """)
    assert hasattr(atexit, "_ncallbacks")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                          env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[0])
    child = psutil.Process(pid) if psutil.pid_exists(pid) else None
    deadline = time.monotonic() + 10
    while child is not None and time.monotonic() < deadline:
        if not child.is_running() or child.status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.05)
    else:
        if child is not None:
            child.kill()
            raise AssertionError("the process the work started outlived the process that started it")
