"""A kernel shutdown or restart — as a Jupyter server does it — leaves no process of its apps behind: no
worker process of the cluster an app created, no process a work started (even in a session of its own)."""

from __future__ import annotations

import os
import signal
import textwrap
import time

import psutil
import pytest
from kernel_session import KernelSession

STUBBORN_APP = textwrap.dedent('''
    %load_ext lightnb
    import subprocess, sys, time
    from lightnb import LightningApp, LightningFlow, LightningWork

    class Stubborn(LightningWork):
        """Starts a process in a session of its own, then sleeps through any stop request."""

        def __init__(self):
            super().__init__(parallel=True)
            self.child = None

        def run(self):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                     start_new_session=True)
            self.child = child.pid
            time.sleep(600)

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Stubborn()

        def run(self):
            self.work.run()

    app = LightningApp(Root())  # an embedded cluster: this app created it
    app.start()
''')


def _start_app(kernel: KernelSession) -> list[psutil.Process]:
    run = kernel.execute(STUBBORN_APP)
    assert run.ok, run.text
    deadline = time.monotonic() + 90
    while (child := kernel.value("app.root.work.child")) is None:
        assert time.monotonic() < deadline, "the work never started its process"
        time.sleep(0.3)
    kernel_process = psutil.Process(kernel.pid)
    processes = [kernel_process, *kernel_process.children(recursive=True)]
    workers = [p for p in processes[1:] if p.pid != child]
    assert child in {p.pid for p in processes}, "the work's process runs under a worker of the app's cluster"
    assert workers, "the app's cluster has worker processes"
    return processes


def _gone(processes: list[psutil.Process], timeout: float = 20) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return alive


@pytest.mark.parametrize("how", ["shutdown", "restart", "SIGTERM"])
def test_no_process_is_left(how):
    kernel = KernelSession()
    try:
        processes = _start_app(kernel)
        if how == "shutdown":
            kernel.manager.shutdown_kernel()  # the server's way: a shutdown request, then a few seconds' grace
            left = _gone(processes)
        elif how == "restart":
            kernel.manager.restart_kernel()
            left = _gone(processes)
            assert kernel.manager.is_alive(), "the restarted kernel runs"
        else:  # what a server does to a kernel that did not exit in time, or a `kill`
            os.kill(kernel.pid, signal.SIGTERM)
            left = _gone(processes)
        assert left == [], f"left running after the kernel {how}: {[p.cmdline() for p in left]}"
    finally:
        if kernel.manager.is_alive():
            kernel.shutdown(now=True)
        for process in processes if "processes" in locals() else []:
            if process.is_running():
                process.kill()
