"""Live development in a real kernel: re-running the cell that defines a class a running app uses switches
the app to the new code (the flow at once, a work at its next call), a refused edit leaves the app as it was,
and apps started one after another share the warm cluster without leaving anything of theirs running."""

from __future__ import annotations

import textwrap
import time

import psutil
import pytest
from kernel_session import KernelSession

SETUP = textwrap.dedent('''
    %load_ext lightnb
    import os, subprocess, sys, time
    from lightnb import LightningApp, LightningFlow, LightningWork

    def until(predicate, timeout=60):
        started = time.monotonic()
        while not predicate():
            if time.monotonic() - started > timeout:
                raise TimeoutError("condition not met")
            time.sleep(0.005)
        return time.monotonic() - started
''')

TICKER = textwrap.dedent('''
    class Ticker(LightningWork):
        def __init__(self):
            super().__init__(parallel=True)
            self.ticks = 0
            self.calls = 0

        def run(self):
            self.calls += 1
            while True:
                time.sleep(0.02)
                self.ticks += 1
''')


def live_flow(version: int, extra: str = "") -> str:
    return textwrap.dedent(f'''
        class Live(LightningFlow):
            def __init__(self):
                super().__init__()
                self.ticker = Ticker()
                self.version = 0
                {extra}

            def run(self):
                self.ticker.run()
                self.version = {version}
    ''')


def echo(version: str) -> str:
    return textwrap.dedent('''
    class Echo(LightningWork):
        def __init__(self):
            super().__init__()
            self.out = []

        def run(self, i):
            self.out = self.out + [f"VERSION:{i}"]

    class Caller(LightningFlow):
        def __init__(self):
            super().__init__()
            self.echo = Echo()
            self.i = 0

        def run(self):
            self.echo.run(self.i)
''').replace("VERSION", version)

POLITE = textwrap.dedent('''
    class Polite(LightningWork):
        """Starts a process and ends it when asked to stop."""
        def __init__(self):
            super().__init__(parallel=True)
            self.child = 0
            self.worker = 0

        def run(self):
            self.worker = os.getpid()
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            self.child = child.pid
            try:
                while True:
                    time.sleep(0.01)
                    self.check_stop()
            finally:
                child.kill()

    class Holder(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Polite()

        def run(self):
            self.work.run()
''')


@pytest.fixture(scope="module")
def kernel():
    with KernelSession() as session:
        setup = session.execute(SETUP + TICKER)
        assert setup.ok and not setup.error, setup.text
        yield session
        session.execute("%lightnb stop")


def ok(run) -> None:
    assert run.ok and run.error is None and "Traceback" not in run.text, run.text


def test_an_edited_flow_runs_at_once_while_its_parallel_work_keeps_running(kernel):
    ok(kernel.execute(live_flow(1) + "app = LightningApp(Live()).start()\nuntil(lambda: app.root.ticker.ticks > 3)"))
    assert kernel.value("app.root.version") == 1

    edited = kernel.execute(live_flow(2, extra="self.note = 'added'"))
    ok(edited)
    took = kernel.value("until(lambda: app.root.version == 2, timeout=10)")
    assert took < 1.0, f"the running app picked up the edited flow after {took:.2f} s"

    ok(kernel.execute("ticks = app.root.ticker.ticks\nuntil(lambda: app.root.ticker.ticks > ticks + 3)"))
    assert kernel.value("app.root.ticker.calls") == 1, "the parallel work was started once, never restarted"
    assert kernel.value("app.root.ticker.is_running") is True
    assert kernel.value("app.stage == 'running'")
    assert kernel.value("app.root.note") == "added", "an attribute the new __init__ declares gets its default"
    assert kernel.value("type(app.root) is Live"), "the flow is an object of the new class"
    log = kernel.value("'\\n'.join(app.logs('root'))")
    assert "reloaded root" in log and "added note='added'" in log, log


def test_a_refused_edit_is_named_and_the_app_keeps_its_old_code(kernel):
    ok(kernel.execute(live_flow(1) + "app = LightningApp(Live()).start()\nuntil(lambda: app.root.ticker.ticks > 3)"))

    as_flow = kernel.execute(textwrap.dedent('''
        class Ticker(LightningFlow):     # the work class, now a flow
            def run(self):
                pass
    '''))
    assert as_flow.ok
    assert "not reloaded root.ticker" in as_flow.stderr and "was a LightningWork" in as_flow.stderr, \
        as_flow.text

    failing = kernel.execute(live_flow(3, extra="raise RuntimeError('half-edited')"))
    assert failing.ok
    assert "not reloaded root" in failing.stderr and "RuntimeError: half-edited" in failing.stderr, failing.text

    ok(kernel.execute("ticks = app.root.ticker.ticks\nuntil(lambda: app.root.ticker.ticks > ticks + 3)"))
    assert kernel.value("app.stage == 'running'")
    assert kernel.value("app.root.version") == 1, "the flow still runs its old code"
    assert kernel.value("type(app.root.ticker).__mro__[1].__name__") == "LightningWork"
    ok(kernel.execute(TICKER))  # the work class again (it applies at the work's next call)
    assert kernel.value("app.stage == 'running'")
    ok(kernel.execute("app.stop()"))


def test_an_edited_work_class_runs_at_the_works_next_call(kernel):
    ok(kernel.execute(echo("v1") +
                      "echo_app = LightningApp(Caller()).start()\n"
                      "frozen = LightningApp(Caller(), hot_reload=False).start()\n"
                      "until(lambda: echo_app.root.echo.out == ['v1:0'] and frozen.root.echo.out == ['v1:0'])"))

    ok(kernel.execute(echo("v2")))
    ok(kernel.execute("echo_app.root.i = 1\nfrozen.root.i = 1\n"
                      "until(lambda: len(echo_app.root.echo.out) == 2 and len(frozen.root.echo.out) == 2)"))

    assert kernel.value("echo_app.root.echo.out") == ["v1:0", "v2:1"], "the next call ran the new class"
    assert kernel.value("frozen.root.echo.out") == ["v1:0", "v1:1"], "hot_reload=False keeps the old code"
    assert kernel.value("echo_app.stage == 'running'")
    ok(kernel.execute("echo_app.stop(); frozen.stop()"))


def test_successive_apps_share_the_warm_cluster_and_leave_nothing_behind():
    with KernelSession() as kernel:
        ok(kernel.execute(SETUP + POLITE))
        runs = []
        for name in ("first", "second"):
            ok(kernel.execute(f"{name} = LightningApp(Holder()).start()\n"
                              f"until(lambda: {name}.root.work.child != 0)"))
            shown = kernel.execute("%lightnb cluster")
            ok(shown)
            address = kernel.value(f"{name}.loop.executor.client.scheduler.address")
            child = kernel.value(f"{name}.root.work.child")
            assert f"warm cluster: {address}" in shown.stdout and f"apps using it: {name}" in shown.stdout, \
                shown.stdout
            ok(kernel.execute(f"{name}.stop()"))
            _, alive = psutil.wait_procs([psutil.Process(child)], timeout=20) if psutil.pid_exists(child) \
                else ([], [])
            assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == [], \
                f"the {name} app's work process outlived the app"
            runs.append(address)
        assert runs[0] == runs[1], "the second app ran on the first app's cluster"
        idle = kernel.execute("%lightnb cluster")
        assert "apps using it: none" in idle.stdout and "idle for" in idle.stdout, idle.stdout

        kernel_process = psutil.Process(kernel.pid)
        processes = kernel_process.children(recursive=True)
        assert processes, "the warm cluster's worker processes run between apps"
        started = time.monotonic()
        kernel.manager.shutdown_kernel()
        _, alive = psutil.wait_procs([kernel_process, *processes], timeout=20)
        assert alive == [], f"left after the kernel shutdown ({time.monotonic() - started:.1f} s): " \
                            f"{[p.cmdline() for p in alive]}"


def test_a_reloaded_local_module_switches_the_app_to_its_new_classes(kernel, tmp_path):
    module = tmp_path / "live_helper.py"
    source = textwrap.dedent('''
        from lightnb import LightningFlow

        class Counter(LightningFlow):
            def __init__(self):
                super().__init__()
                self.seen = "VERSION"

            def run(self):
                self.seen = "VERSION"
    ''')
    module.write_text(source.replace("VERSION", "old"))
    ok(kernel.execute(f"import importlib, sys\nsys.path.insert(0, {str(tmp_path)!r})\nimport live_helper\n"
                      "helper_app = LightningApp(live_helper.Counter()).start()\n"
                      "until(lambda: helper_app.loop.passes > 0)"))
    assert kernel.value("helper_app.root.seen") == "old"

    module.write_text(source.replace("VERSION", "newer"))
    ok(kernel.execute("importlib.invalidate_caches(); importlib.reload(live_helper)"))
    assert kernel.value("until(lambda: helper_app.root.seen == 'newer', timeout=10) < 10")
    assert kernel.value("type(helper_app.root) is live_helper.Counter")
    ok(kernel.execute("helper_app.stop()"))
