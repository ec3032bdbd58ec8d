"""Nothing of an app outlives its client on the embedded cluster: not the worker processes, not what the works
started themselves (a ``subprocess.Popen`` inside ``run()``, a shell and its background children) — whether
``lightnb run`` is stopped, interrupted, terminated or killed, and when the kernel running an app is killed.

(Works on a cluster lightnb did not create outlive their client by design: see tests/test_durable_apps.py.)
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from script_apps import env

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the subreaper and parent-death signal are Linux's")

WORKS = '''\
import os
import subprocess

from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.components import ShellWork


class Spawner(LightningWork):
    """Starts a process of its own and returns: the process is the work's, not the call's."""

    def __init__(self):
        super().__init__(parallel=True)
        self.child = 0

    def run(self):
        self.child = subprocess.Popen(["sleep", "300"]).pid
        print(f"spawned {self.child}", flush=True)


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.spawner = Spawner()
        self.shell = ShellWork("sh -c 'sleep 300 & sleep 300'", parallel=True)

    def run(self):
        self.spawner.run()
        self.shell.run()
'''

APP = WORKS + "\n\napp = LightningApp(Root())\n"

SLEEPERS = 3  # the spawner's sleep, the shell's background sleep and its foreground one


def sleepers(processes: list[psutil.Process]) -> list[psutil.Process]:
    found = []
    for process in processes:
        try:
            if process.cmdline() == ["sleep", "300"]:
                found.append(process)
        except psutil.Error:
            pass
    return found


def tree_of(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def wait_for_tree(pid: int, deadline: float) -> list[psutil.Process]:
    """The whole process tree under ``pid`` once every work has started its processes."""
    while time.monotonic() < deadline:
        tree = tree_of(pid)
        if len(sleepers(tree)) >= SLEEPERS:
            return tree
        time.sleep(0.2)
    raise AssertionError(f"the works did not start their processes: {[(p.pid, p.name()) for p in tree_of(pid)]}")


def assert_all_gone(tree: list[psutil.Process], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    alive = tree
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        time.sleep(0.1)
    assert not alive, f"left behind: {[(p.pid, _describe(p)) for p in alive]}"


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _describe(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return "?"


def _end(tree: list[psutil.Process]) -> None:
    for process in tree:
        try:
            process.kill()
        except psutil.Error:
            pass


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda sig: sig.name)
def test_nothing_outlives_lightnb_run_whichever_signal_ends_it(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / "app.py").write_text(APP)
    process = subprocess.Popen([sys.executable, "-m", "lightnb", "run", "app.py"], cwd=tmp_path, env=env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    tree: list[psutil.Process] = []
    try:
        tree = wait_for_tree(process.pid, time.monotonic() + 240)
        assert len(tree) >= 1 + 2 + SLEEPERS + 1  # lightnb, its worker processes, the sleeps, the shell
        process.send_signal(sig)
        process.wait(timeout=120)
        assert_all_gone(tree)
    finally:
        _end([*tree, *tree_of(process.pid)])


def test_nothing_outlives_a_killed_kernel(tmp_path: Path) -> None:
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env())
    tree: list[psutil.Process] = []
    try:
        code = WORKS + "\napp = LightningApp(Root())\napp.start()\nimport os\nprint(os.getpid())"
        reply = client.execute_interactive(code, timeout=240, output_hook=lambda message: None)
        assert reply["content"]["status"] == "ok", reply["content"]
        kernel_pid = manager.provisioner.process.pid
        tree = wait_for_tree(kernel_pid, time.monotonic() + 240)
        manager.provisioner.process.send_signal(signal.SIGKILL)
        assert_all_gone(tree)
    finally:
        client.stop_channels()
        _end(tree)
        manager.cleanup_resources() if not manager.is_alive() else manager.shutdown_kernel(now=True)


def test_the_warm_cluster_ends_what_an_app_s_works_started_when_the_app_stops(tmp_path: Path) -> None:
    # In a process that keeps its (warm) cluster, app.stop() ends the processes the app's works started.
    script = tmp_path / "stop.py"
    script.write_text(WORKS + '''
import json, sys, time
import psutil
from lightnb.runtime import warm

if __name__ == "__main__":
    app = LightningApp(Root())
    app.start()
    deadline = time.monotonic() + 240
    def sleepers():
        return [p.pid for pid in warm.worker_pids() for p in psutil.Process(pid).children(recursive=True)
                if p.cmdline() == ["sleep", "300"]]
    while len(sleepers()) < 3 and time.monotonic() < deadline - 10:
        time.sleep(0.2)
    started = sleepers()
    app.stop()
    left = started
    while left and time.monotonic() < deadline + 10:
        left = [pid for pid in left if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
        time.sleep(0.1)
    print(json.dumps({"started": started, "left": left, "warm": warm.describe() is not None}), flush=True)
    warm.shutdown()
''')
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env(), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(report["started"]) == SLEEPERS
    assert report["warm"]  # the cluster stayed for the next app
    assert report["left"] == []
