"""The warm cluster: apps started one after another in a process share one embedded LocalCluster, and
nothing of an app outlives it — its works stop (a work that ignores the stop loses its worker process), the
processes they started end — while the cluster waits, idle, for the next app; then it closes by itself, or
with the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

SCRIPT = textwrap.dedent('''
    import json, os, subprocess, sys, time
    import psutil
    from lightnb import LightningApp, LightningFlow, LightningWork
    from lightnb.runtime import warm

    class Polite(LightningWork):
        """Starts a process, and ends it when asked to stop (what ShellWork and friends do)."""
        def __init__(self):
            super().__init__(parallel=True)
            self.pid = 0
            self.child = 0
        def run(self):
            self.pid = os.getpid()
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            self.child = child.pid
            try:
                while True:
                    time.sleep(0.01)
                    self.check_stop()
            finally:
                child.kill()

    class Stubborn(LightningWork):
        """Starts a process in a session of its own and sleeps through any stop request."""
        def __init__(self):
            super().__init__(parallel=True)
            self.pid = 0
            self.child = 0
        def run(self):
            self.pid = os.getpid()
            self.child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                          start_new_session=True).pid
            time.sleep(600)

    class Root(LightningFlow):
        def __init__(self, work):
            super().__init__()
            self.work = work
        def run(self):
            self.work.run()

    def until(predicate, timeout=60):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)

    def gone(pid):
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    def main():
        report = {"apps": []}
        for work in (Polite(), Stubborn(), Polite()):
            app = LightningApp(Root(work)).start()
            until(lambda: app.root.work.child != 0)
            entry = {"address": app.loop.executor.client.scheduler.address, "worker": app.root.work.pid,
                     "child": app.root.work.child, "users": warm.describe()["apps"] == [app.app_id]}
            app.stop()
            until(lambda: gone(entry["child"]), 20)
            entry["child_gone"] = gone(entry["child"])
            entry["worker_gone"] = gone(entry["worker"])
            entry["users_after"] = warm.describe()["apps"]
            report["apps"].append(entry)
        report["workers"] = warm.worker_pids()
        until(lambda: warm.describe() is None, 30)   # LIGHTNB_WARM_CLUSTER=2: closed 2 s after the last app
        report["workers_gone_after_idle"] = all(gone(pid) for pid in report["workers"])
        app = LightningApp(Root(Polite())).start()   # a fresh warm cluster for the next app
        until(lambda: app.root.work.child != 0)
        report["next_address"] = app.loop.executor.client.scheduler.address
        report["last_workers"] = warm.worker_pids()
        report["last_child"] = app.root.work.child
        print("REPORT", json.dumps(report), flush=True)
        # the process ends with the app and its warm cluster still running: the exit closes both

    if __name__ == "__main__":
        main()
''')


def test_successive_apps_share_the_warm_cluster_and_leave_nothing_running(tmp_path: Path):
    script = tmp_path / "apps.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "LIGHTNB_WARM_CLUSTER": "2"}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.split("REPORT", 1)[1])
    polite, stubborn, again = report["apps"]
    assert polite["address"] == stubborn["address"] == again["address"], "the apps share one cluster"
    assert all(entry["users"] and entry["users_after"] == [] for entry in report["apps"]), \
        "the warm cluster knows which app uses it"
    assert all(entry["child_gone"] for entry in report["apps"]), "no process a work started outlives its app"
    assert not polite["worker_gone"], "a work that stops leaves its worker process warm for the next app"
    assert stubborn["worker_gone"], "a work that ignores the stop loses its worker process (a fresh one replaces it)"
    assert report["workers_gone_after_idle"], "the idle warm cluster closed with its worker processes"
    assert report["next_address"] != polite["address"], "a later app gets a fresh warm cluster"
    leftovers = [psutil.Process(pid) for pid in [*report["last_workers"], report["last_child"]]
                 if psutil.pid_exists(pid)]
    _, alive = psutil.wait_procs(leftovers, timeout=20)
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == [], "the process's exit closes everything"
