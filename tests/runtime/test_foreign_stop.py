"""Stopping reaches a work's pure-Python code on a cluster lightnb did not create (`dask scheduler` + `dask
worker` processes started apart), where lightnb may not end worker processes: the work's thread gets
WorkStopped at its next bytecode, on_exit() runs there, and the worker lives on and takes the next task."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.runtime.worker import interrupted_message


class Spin(LightningWork):
    """Pure Python that never sets an attribute nor calls check_stop() once it spins."""

    def __init__(self, marks: str) -> None:
        super().__init__(parallel=True)
        self.marks = marks
        self.spinning = False

    def run(self) -> None:
        Path(self.marks, "pid").write_text(str(os.getpid()))
        self.spinning = True
        total = 0
        while True:
            total += 1

    def on_exit(self) -> None:
        Path(self.marks, "on_exit").write_text(str(os.getpid()))


class Root(LightningFlow):
    def __init__(self, marks: str) -> None:
        super().__init__()
        self.spin = Spin(marks)

    def run(self) -> None:
        self.spin.run()


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_app_stop_interrupts_pure_python_on_a_foreign_cluster_and_the_worker_lives_on(remote, tmp_path):
    from distributed import Client

    app = LightningApp(Root(str(tmp_path)), cluster=remote.address).start()
    try:
        wait_for(lambda: app.root.spin.spinning, 120, "the work to spin")
        pid = int((tmp_path / "pid").read_text())
        started = time.monotonic()
        app.stop(timeout=60)
        stopped_in = time.monotonic() - started
    finally:
        app.stop(timeout=60)
    assert app.ended and app.root.spin.has_stopped, app.root.spin.status
    assert stopped_in < 20, f"app.stop() took {stopped_in:.1f} s"
    # on_exit ran where the work ran, in the worker process, which lives on.
    assert int((tmp_path / "on_exit").read_text()) == pid != os.getpid()
    assert psutil.pid_exists(pid)
    assert interrupted_message("root.spin").splitlines()[0] in "".join(app.logs("root.spin"))
    with Client(remote.address, timeout=30) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert len(workers) == 2, "no worker was ended or lost"
        address = next(addr for addr, worker_pid in client.run(os.getpid).items() if worker_pid == pid)
        # Nothing of the app still runs there, and it takes the next task.
        from lightnb.runtime.dask import apps_running_here

        wait_for(lambda: client.run(apps_running_here, workers=[address])[address] == [], 30,
                 "the call to end on its worker")
        assert client.submit(lambda: "next", workers=[address], pure=False).result(timeout=60) == "next"
    # The spinning thread ended: the worker process is idle again.
    assert psutil.Process(pid).cpu_percent(interval=1.0) < 50
