"""The `lightnb` command for real: `python -m lightnb` subprocesses, a notebook executed in a real kernel, a
separately started `dask scheduler` with two `dask worker` processes, a pseudo-terminal and pipes."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from remote_cluster import RemoteCluster
from script_apps import (
    FAILING_APP,
    FOREVER_APP,
    PIDS_APP,
    comparable,
    counter_notebook,
    env,
    lightnb,
    write_notebook,
)

ANSI = re.compile(r"\x1b\[")


@pytest.fixture(scope="module")
def kernel_state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The counter notebook executed top to bottom in a real kernel: its app's final state."""
    from nbclient import NotebookClient

    directory = tmp_path_factory.mktemp("kernel")
    notebook = counter_notebook()
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(directory)}}).execute()
    printed = "".join(output.get("text", "") for output in notebook.cells[-1].outputs)
    return json.loads(printed.split("STATE=", 1)[1])


def read_state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


# -- a notebook to a script, run unchanged on the embedded and on a separate cluster -----------------------
@pytest.mark.parametrize("where", ["embedded", "remote"])
def test_the_script_reaches_the_notebooks_final_state(where: str, kernel_state: dict[str, Any],
                                                      request: pytest.FixtureRequest, tmp_path: Path) -> None:
    notebook = write_notebook(counter_notebook(), tmp_path / "counter.ipynb")
    exported = lightnb("export", notebook, "-o", "counter.py", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "wrote counter.py" in exported.stderr
    subprocess.run([sys.executable, "-m", "py_compile", "counter.py"], cwd=tmp_path, check=True)

    cluster = ["--cluster", request.getfixturevalue("remote").address] if where == "remote" else []
    # The exported script on the embedded cluster; the notebook itself (exported in memory) on the other.
    target = "counter.py" if where == "embedded" else "counter.ipynb"
    run = lightnb("run", target, *cluster, "--state-json", "state.json", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert kernel_state["vars"]["total"] == 3
    assert comparable(read_state(tmp_path / "state.json")) == comparable(kernel_state)
    lines = run.stdout.splitlines()
    assert "root.counter | counted 3" in lines and "lightnb: Root stopped: counted to 3" in lines
    assert not ANSI.search(run.stdout + run.stderr)


def test_works_run_on_the_remote_workers_which_outlive_the_app(remote: RemoteCluster, tmp_path: Path) -> None:
    (tmp_path / "pids.py").write_text(PIDS_APP)
    worker_pids = {process.pid for process in remote.workers}
    command = ["run", "pids.py", "--cluster", remote.address, "--state-json", "state.json"]
    process = subprocess.Popen([sys.executable, "-m", "lightnb", *command], cwd=tmp_path, env=env(),
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, out + err
    assert f"lightnb: on the Dask cluster at {remote.address}" in out
    works = read_state(tmp_path / "state.json")["works"]
    pids = {works["a"]["vars"]["pid"], works["b"]["vars"]["pid"]}
    assert pids <= worker_pids and process.pid not in pids
    # lightnb did not create that cluster, so it left it running.
    assert all(worker.poll() is None for worker in remote.workers)
    assert len(remote.connected_workers()) == 2


def test_parameters_and_environment_reach_the_works(remote: RemoteCluster, tmp_path: Path) -> None:
    write_notebook(counter_notebook(steps=3), tmp_path / "counter.ipynb")
    run = lightnb("run", "counter.ipynb", "--cluster", remote.address, "--param", "steps=5", "--param",
                  "label=from the command line", "--env", "LIGHTNB_TEST_GREETING=hello there",
                  "--state-json", "state.json", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    state = read_state(tmp_path / "state.json")
    assert state["vars"]["total"] == 5 and state["vars"]["label"] == "from the command line"
    assert state["works"]["counter"]["vars"]["greeting"] == "hello there"


@pytest.mark.parametrize("as_notebook", [False, True], ids=["script", "notebook"])
def test_a_failing_work_exits_1_with_its_traceback(remote: RemoteCluster, tmp_path: Path, as_notebook: bool) -> None:
    if as_notebook:  # its code exists only in the client's memory: the workers cannot read its lines
        app_file = write_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(FAILING_APP)]),
                                  tmp_path / "failing.ipynb")
    else:
        app_file = tmp_path / "failing.py"
        app_file.write_text(FAILING_APP)
    run = lightnb("run", app_file.name, "--cluster", remote.address, cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "lightnb: Root failed: root.broken failed:" in run.stderr
    assert "ValueError: bad value 42" in run.stderr
    assert re.search(rf'{app_file.name}.*", line \d+, in run\n\s+check\(42\)\n.*", line \d+, in check\n'
                     r'\s+raise ValueError', run.stderr), run.stderr
    assert "root.broken: failed (ValueError: bad value 42)" in run.stdout


# -- cluster specs ------------------------------------------------------------------------------------------
def test_a_spec_file_naming_a_local_cluster(tmp_path: Path) -> None:
    (tmp_path / "pids.py").write_text(PIDS_APP)
    (tmp_path / "cluster.yaml").write_text(
        "class: distributed.LocalCluster\n"
        "kwargs:\n  n_workers: 1\n  threads_per_worker: 2\n  processes: true\n  host: 127.0.0.1\n"
        "  dashboard_address: null\n"
    )
    command = ["run", "pids.py", "--cluster", "cluster.yaml", "--state-json", "state.json"]
    process = subprocess.Popen([sys.executable, "-m", "lightnb", *command], cwd=tmp_path, env=env(),
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, out + err
    assert "lightnb: on distributed.LocalCluster at tcp://127.0.0.1:" in out
    works = read_state(tmp_path / "state.json")["works"]
    pid = works["a"]["vars"]["pid"]
    assert pid == works["b"]["vars"]["pid"] != process.pid  # the spec's one worker process
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.parametrize(("spec", "message"), [
    ("class: not_installed_cluster_pkg.aws.SomeCluster\nkwargs: {n_workers: 2}\n",
     "cluster.yaml names not_installed_cluster_pkg.aws.SomeCluster, but the package "
     "'not_installed_cluster_pkg' is not installed (pip install not-installed-cluster-pkg)"),
    ("class: distributed.NoSuchCluster\n", "cluster.yaml: module distributed has no class 'NoSuchCluster'"),
    ("klass: distributed.LocalCluster\n", "cluster.yaml must have the keys 'class' and optionally 'kwargs'"),
    ("- just\n- a list\n", "cluster spec file cluster.yaml must hold a mapping"),
])
def test_bad_cluster_specs_exit_2_naming_the_problem(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "pids.py").write_text(PIDS_APP)
    (tmp_path / "cluster.yaml").write_text(spec)
    run = lightnb("run", "pids.py", "--cluster", "cluster.yaml", cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""


# -- bad usage ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("files", "args", "message"), [
    ({}, ["run", "missing.py"], "lightnb: missing.py: no such file"),
    ({"plain.py": "x = 1\n"}, ["run", "plain.py"], "plain.py defines no LightningApp at module level"),
    ({"two.py": PIDS_APP + "second = LightningApp(Root())\n"}, ["run", "two.py"],
     "two.py defines 2 LightningApps (app, second); lightnb run runs one"),
    ({"notes.txt": "hi"}, ["run", "notes.txt"], "takes an app script (.py) or a notebook (.ipynb)"),
    ({"pids.py": PIDS_APP}, ["run", "pids.py", "--param", "lr=0.1"], "pids.py has no parameters cell"),
    ({"pids.py": PIDS_APP}, ["run", "pids.py", "--env", "NOVALUE"], "--env expects NAME=VALUE, not 'NOVALU"),
    ({"pids.py": PIDS_APP}, ["run", "pids.py", "--cluster", "nowhere.yaml"],
     "cluster spec file nowhere.yaml does not exist"),
    ({"pids.py": PIDS_APP, "spec.txt": "x"}, ["run", "pids.py", "--cluster", "spec.txt"],
     "a cluster spec file is .yaml, .yml or .json"),
    ({"bad.ipynb": "{not json"}, ["run", "bad.ipynb"], "bad.ipynb is not a notebook: it is not valid JSON"),
    ({"bad.ipynb": "{not json"}, ["export", "bad.ipynb"], "bad.ipynb is not a notebook: it is not valid JS"),
    ({}, ["export", "missing.ipynb"], "lightnb: missing.ipynb: no such notebook"),
    ({}, ["run"], "the following arguments are required"),
    ({"pids.py": PIDS_APP}, ["run", "pids.py", "--cluster", "tcp://127.0.0.1:9"],
     "could not reach a Dask scheduler at tcp://127.0.0.1:9 within 5 s"),
])
def test_bad_usage_exits_2_with_a_message_and_no_traceback(tmp_path: Path, files: dict[str, str],
                                                           args: list[str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    run = lightnb(*args, cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_export_errors_name_the_cell(tmp_path: Path) -> None:
    from nbformat.v4 import new_code_cell

    notebook = counter_notebook(extra_cells=[new_code_cell("for x in range(3)\n    print(x)")])
    write_notebook(notebook, tmp_path / "broken.ipynb")
    run = lightnb("export", "broken.ipynb", cwd=tmp_path)
    assert run.returncode == 2
    assert "lightnb: broken.ipynb, cell 8 (`for x in range(3)`), line 1: expected ':'" in run.stderr
    assert not (tmp_path / "broken.py").exists()
    stdout = lightnb("export", "counter.ipynb", "-o", "-", cwd=tmp_path)
    assert stdout.returncode == 2 and "counter.ipynb: no such notebook" in stdout.stderr


def test_a_script_failing_while_it_loads_exits_1_with_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "crash.py").write_text("import os\n\nsettings = {}\nport = settings['port']\n")
    run = lightnb("run", "crash.py", cwd=tmp_path)
    assert run.returncode == 1
    assert "lightnb: crash.py failed while loading:" in run.stderr
    assert re.search(r'crash.py", line 4, in <module>\n    port = settings\[.port.\]\n', run.stderr)
    assert run.stderr.rstrip().endswith("KeyError: 'port'")
    assert "lightnb/cli/appfile.py" not in run.stderr  # only the user's frames


def test_export_to_stdout_and_help(tmp_path: Path) -> None:
    write_notebook(counter_notebook(), tmp_path / "counter.ipynb")
    run = lightnb("export", "counter.ipynb", "-o", "-", cwd=tmp_path)
    assert run.returncode == 0
    assert run.stdout.startswith("# App script exported from counter.ipynb by `lightnb export`.")
    assert not (tmp_path / "counter.py").exists()
    usage = lightnb("run", "--help", cwd=tmp_path)
    assert usage.returncode == 0 and "--cluster ADDRESS|SPEC.yaml" in usage.stdout


# -- Ctrl-C -------------------------------------------------------------------------------------------------
def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def assert_all_gone(processes: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(processes, timeout=20)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left behind: {[(p.pid, p.cmdline()) for p in alive]}"


def test_ctrl_c_in_a_terminal_stops_everything_and_exits_130(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    (tmp_path / "forever.py").write_text(FOREVER_APP)
    child = pexpect.spawn(sys.executable, ["-m", "lightnb", "run", "forever.py"], cwd=str(tmp_path),
                          env=env(), timeout=240, dimensions=(30, 120), encoding="utf-8",
                          codec_errors="replace")
    child.expect(r"forever \| working in (\d+)")
    work_pid = int(child.match.group(1))
    child.expect("running")  # the live table, drawn with control codes on a terminal
    tree = descendants(child.pid)
    assert work_pid in {p.pid for p in tree}  # a worker process of the embedded cluster
    shown = child.before + child.after
    child.sendintr()  # Ctrl-C: SIGINT to the terminal's whole foreground process group
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, child.before
    assert ANSI.search(shown)
    assert "lightnb: Root stopped by SIGINT" in child.before
    assert_all_gone(tree)


def test_ctrl_c_through_a_pipe_stops_everything_and_exits_130(tmp_path: Path) -> None:
    (tmp_path / "forever.py").write_text(FOREVER_APP)
    process = subprocess.Popen([sys.executable, "-m", "lightnb", "run", "forever.py"], cwd=tmp_path,
                               env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 240
    while not any("working in" in line for line in seen):
        seen.append(lines.get(timeout=max(1.0, deadline - time.monotonic())))
    tree = descendants(process.pid)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal would: the whole process group
    assert process.wait(timeout=120) == 130
    time.sleep(0.5)
    while not lines.empty():
        seen.append(lines.get())
    output = "".join(seen)
    assert not ANSI.search(output) and "\r" not in output
    assert "root.forever: running" in output and "lightnb: Root stopped by SIGINT" in output
    assert_all_gone(tree)


PRINT_ONCE_APP = """\
from lightnb import LightningApp, LightningFlow


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.greeted = False

    def run(self):
        if not self.greeted:
            print("hello from the first pass", flush=True)
            self.greeted = True


app = LightningApp(Root())
"""


def test_what_the_first_pass_prints_shows_at_once(tmp_path: Path) -> None:
    # The flow prints once, then nothing changes again: the line must show while the app runs, not only at
    # Ctrl-C (the view once subscribed to the app after its first pass had run).
    (tmp_path / "hello.py").write_text(PRINT_ONCE_APP)
    process = subprocess.Popen([sys.executable, "-m", "lightnb", "run", "hello.py"], cwd=tmp_path, env=env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any("hello from the first pass" in line for line in seen):
            assert process.poll() is None, "".join(seen)
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"the flow's line did not show while the app ran:\n{''.join(seen)}"
            try:
                seen.append(lines.get(timeout=remaining))
            except queue.Empty:
                pass
        assert process.poll() is None  # shown while it runs
        assert any(line.startswith("root | hello from the first pass") for line in seen), seen
    finally:
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=120) == 130


METRICS_APP = """\
import time

from lightnb import LightningApp, LightningFlow, LightningWork


class Learn(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.metrics = {}

    def run(self):
        for step in range(1, 21):
            self.metrics = {"loss": 1 / step, "accuracy": 1 - 1 / (step + 1)}
            time.sleep(0.1)


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.learn = Learn()

    def run(self):
        self.learn.run()
        if self.learn.has_succeeded:
            self.stop("learnt")


app = LightningApp(Root())
"""


def test_a_run_shows_a_works_streamed_metrics_as_sparklines(tmp_path: Path) -> None:
    (tmp_path / "learn.py").write_text(METRICS_APP)
    done = lightnb("run", "learn.py", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {line.split(" ")[2]: line for line in done.stdout.splitlines() if line.startswith("root.learn metrics: ")}
    assert set(lines) == {"loss", "accuracy"}, done.stdout
    _, _, _, loss_spark, loss_last = lines["loss"].split(" ")
    _, _, _, accuracy_spark, accuracy_last = lines["accuracy"].split(" ")
    assert float(loss_last) == 0.05 and abs(float(accuracy_last) - 20 / 21) < 1e-3  # the last values streamed
    assert len(loss_spark) >= 3 and set(loss_spark + accuracy_spark) <= set("▁▂▃▄▅▆▇█")
    assert loss_spark[0] > loss_spark[-1] and accuracy_spark[0] < accuracy_spark[-1]  # going down, going up


def test_in_a_terminal_the_live_table_shows_the_metrics_sparklines(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    (tmp_path / "learn.py").write_text(METRICS_APP.replace("range(1, 21)", "range(1, 61)"))
    child = pexpect.spawn(sys.executable, ["-m", "lightnb", "run", "learn.py"], cwd=str(tmp_path), env=env(),
                          timeout=240, dimensions=(30, 160), encoding="utf-8", codec_errors="replace")
    # The live table's metrics column, redrawn while the work streams: a sparkline of at least 3 points.
    child.expect(r"loss [▁▂▃▄▅▆▇█]{3,} [\d.e-]+")
    child.expect("accuracy")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
