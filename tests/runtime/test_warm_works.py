"""Warm works on a real cluster: a work's later calls go straight to the warm host on its worker (no Dask task),
and keep every rule of a call: results and logs reach the app, a dead worker fails the call once, a stop stops
it, an edited class is picked up, and nothing is left on the workers when the app ends."""

from __future__ import annotations

import os
import threading

import pytest
from polling import wait_until as poll

from lightnb import LightningApp
from lightnb.core.reload import apply_plan, class_key, plan_reload

CLASSES = '''
import os, threading, time
from lightnb import LightningFlow, LightningWork

class Counter(LightningWork):
    def __init__(self):
        super().__init__(raise_exception=False)  # a failed call leaves the app running
        self.last = 0
        self.total = 0
        self.thread = ""
        self.pid = 0
        self.version = 0
        self.calls_here = 0

    def run(self, n, mode="add"):
        self.thread = threading.current_thread().name
        self.pid = os.getpid()
        self.version = VERSION
        self._calls_here = getattr(self, "_calls_here", 0) + 1  # private: lives in the worker process
        self.calls_here = self._calls_here
        print(f"call {n} on v{VERSION}")
        if mode == "die":
            with open(MARKS, "a") as f:
                f.write(f"die {n}\\n")
            os.kill(os.getpid(), 9)
        if mode == "wait":
            while True:
                time.sleep(0.01)
                self.last = -n  # running
                self.check_stop()
        self.total += n
        self.last = n

    def on_exit(self):
        with open(MARKS, "a") as f:
            f.write("on_exit\\n")

class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.counter = Counter()
        self.request = [1, "add"]  # the arguments of the work's next call

    def run(self):
        self.counter.run(*self.request)
'''


def define(version: int, marks) -> dict:
    namespace: dict = {"__name__": "__main__"}
    source = CLASSES.replace("VERSION", str(version)).replace("MARKS", repr(str(marks)))
    exec(compile(source, "<cell>", "exec"), namespace)
    return namespace


def wait_until(predicate, timeout=60.0):
    poll(predicate, timeout)


def call(app, n, mode="add"):
    """What a notebook cell does: the flow's next pass calls the work with these arguments."""
    app.root.request = [n, mode]


def warm_up(app):
    """Calls until one ran on the warm host (the host is placed once the first call reported its worker)."""
    n = 1
    wait_until(lambda: app.root.counter.last == 1)
    while not app.root.counter.thread.startswith("lightnb-warm"):
        n += 1
        call(app, n)
        wait_until(lambda n=n: app.root.counter.last == n)
        assert n < 20, "no call reached the warm host"
    return n


def task_keys(client, app_id):
    def keys(dask_scheduler, prefix=f"lightnb-{app_id}-"):
        return sorted({str(entry[0]) for entry in dask_scheduler.transition_log
                       if str(entry[0]).startswith(prefix)})

    return client.run_on_scheduler(keys)


def test_later_calls_run_on_the_warm_host_without_a_dask_task(cluster, tmp_path):
    from distributed import Client

    app = LightningApp(define(1, tmp_path / "marks")["Root"](), cluster=cluster).start()
    try:
        n = warm_up(app)
        first_pid = app.root.counter.pid
        tasks_before = task_keys(Client(cluster, set_as_default=False), app.app_id)
        for m in range(n + 1, n + 6):
            call(app, m)
            wait_until(lambda m=m: app.root.counter.last == m)
            assert app.root.counter.thread.startswith("lightnb-warm"), "the call ran on the warm host"
            assert app.root.counter.pid == first_pid, "in the same worker process"
        with Client(cluster, set_as_default=False) as client:
            assert task_keys(client, app.app_id) == tasks_before, "no Dask task for the warm calls"
        assert app.root.counter.total == sum(range(1, n + 6))
        assert app.root.counter.calls_here == n + 5, "its private attributes stayed in the worker process"
        wait_until(lambda: f"call {n + 5} on v1" in "".join(app.logs("root.counter")))
    finally:
        app.stop()


def test_a_worker_killed_during_a_warm_call_fails_the_call_once(cluster, tmp_path):
    marks = tmp_path / "marks"
    app = LightningApp(define(1, marks)["Root"](), cluster=cluster).start()
    try:
        n = warm_up(app)
        call(app, n + 1, "die")
        wait_until(lambda: app.root.counter.status.stage == "failed")
        assert "worker process running root.counter died" in app.root.counter.status.message
        assert "not run again" in app.root.counter.status.message
        # The flow is still alive and the work can be called again (as a task on a live worker).
        call(app, n + 2)
        wait_until(lambda: app.root.counter.last == n + 2)
        assert marks.read_text().count("die") == 1, "the call that lost its worker ran once"
    finally:
        app.stop()


def test_stopping_a_warm_call_stops_it_and_runs_on_exit(cluster, tmp_path):
    marks = tmp_path / "marks"
    app = LightningApp(define(1, marks)["Root"](), cluster=cluster).start()
    try:
        n = warm_up(app)
        call(app, n + 1, "wait")
        wait_until(lambda: app.root.counter.last == -(n + 1))
        assert app.root.counter.thread.startswith("lightnb-warm")
        app.root.counter.stop()  # what a cell or the stop button does
        wait_until(lambda: app.root.counter.status.stage == "stopped")
        wait_until(lambda: marks.exists() and "on_exit" in marks.read_text())
    finally:
        app.stop()


def test_an_edited_work_class_runs_at_the_next_warm_call(cluster, tmp_path):
    marks = tmp_path / "marks"
    app = LightningApp(define(1, marks)["Root"](), cluster=cluster).start()
    try:
        n = warm_up(app)
        new = define(2, marks)
        plan = plan_reload(app.root, {class_key(new["Counter"]): new["Counter"]})
        assert plan.swaps and not plan.refusals
        applied = threading.Event()
        app._loop.call_soon(lambda: (apply_plan(plan, app.root), applied.set()))
        wait_until(applied.is_set)
        call(app, n + 1)
        wait_until(lambda: app.root.counter.last == n + 1)
        assert app.root.counter.version == 2, "the warm host ran the edited class"
        assert app.root.counter.thread.startswith("lightnb-warm")
        wait_until(lambda: f"call {n + 1} on v2" in "".join(app.logs("root.counter")))
    finally:
        app.stop()


def test_an_ended_app_leaves_no_warm_host_on_the_workers(cluster, tmp_path):
    from distributed import Client

    app = LightningApp(define(1, tmp_path / "marks")["Root"](), cluster=cluster).start()
    warm_up(app)
    with Client(cluster, set_as_default=False) as client:
        def hosts(dask_worker, app_id=app.app_id):
            return [str(key) for key in dask_worker.state.actors if app_id in str(key)]

        assert any(client.run(hosts).values()), "the app had a warm host"
        app.stop()
        wait_until(lambda: not any(client.run(hosts).values()), timeout=30)

        def push_subscribers(dask_scheduler, topic=f"lightnb-push-{app.app_id}"):
            return len(dask_scheduler._broker._topics[topic].subscribers)

        wait_until(lambda: client.run_on_scheduler(push_subscribers) == 0, timeout=30)


@pytest.mark.parametrize("setting", ["0"])
def test_warm_works_can_be_turned_off(cluster, tmp_path, monkeypatch, setting):
    monkeypatch.setenv("LIGHTNB_WARM_WORKS", setting)
    app = LightningApp(define(1, tmp_path / "marks")["Root"](), cluster=cluster).start()
    try:
        wait_until(lambda: app.root.counter.last == 1)
        for m in range(2, 5):
            call(app, m)
            wait_until(lambda m=m: app.root.counter.last == m)
            assert not app.root.counter.thread.startswith("lightnb-warm")
        assert os.getpid() != app.root.counter.pid
    finally:
        app.stop()


STUBBORN_SCRIPT = '''
import json, os, threading, time
import psutil
from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.runtime import warm

class Napper(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.n = 0
        self.thread = ""
        self.pid = 0
    def run(self, n, stubborn):
        self.thread, self.pid = threading.current_thread().name, os.getpid()
        self.n = n
        if stubborn:
            time.sleep(600)  # sleeps through any stop request

class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.napper = Napper()
        self.request = [1, False]
    def run(self):
        self.napper.run(*self.request)

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

if __name__ == "__main__":
    app = LightningApp(Root()).start()
    n = 1
    until(lambda: app.root.napper.n == 1 and app.root.napper.has_succeeded)
    while not app.root.napper.thread.startswith("lightnb-warm"):
        n += 1
        app.root.request = [n, False]
        until(lambda: app.root.napper.n == n and app.root.napper.has_succeeded)
    app.root.request = [n + 1, True]
    until(lambda: app.root.napper.n == n + 1)
    report = {"warm": app.root.napper.thread.startswith("lightnb-warm"), "worker": app.root.napper.pid}
    app.stop()
    until(lambda: gone(report["worker"]), 30)
    report["worker_gone"] = gone(report["worker"])
    report["apps_after"] = warm.describe()["apps"]
    print("REPORT", json.dumps(report), flush=True)
'''


def test_a_warm_call_that_ignores_the_stop_ends_with_its_worker_when_the_app_ends(tmp_path):
    import json
    import subprocess
    import sys

    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN_SCRIPT)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240,
                            cwd=tmp_path, env={**os.environ, "LIGHTNB_WARM_CLUSTER": "60"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.split("REPORT", 1)[1])
    assert report["warm"], "the stubborn call ran on the warm host"
    assert report["worker_gone"], "its worker process ended with the app (a fresh one replaces it)"
    assert report["apps_after"] == []
