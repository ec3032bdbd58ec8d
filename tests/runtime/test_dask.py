"""Works on a real Dask cluster: worker processes, streaming both ways, failures, resources, clean-up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from polling import wait_until

from lightnb import AppFailed, CloudCompute, LightningApp, LightningFlow, LightningWork


class Reporter(LightningWork):
    """Reports where it runs, streams a list, and waits for the flow to say when to finish."""

    def __init__(self, parallel=True, **kwargs):
        super().__init__(parallel=parallel, **kwargs)
        self.pid = 0
        self.items = []
        self.finish = False

    def run(self, count=20):
        self.pid = os.getpid()
        for index in range(count):
            self.items.append(index)  # in-place mutation streams too
        while not self.finish:
            time.sleep(0.005)
            self.check_stop()


def test_works_run_in_worker_processes_and_stream_both_ways(cluster):
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Reporter()
            self.observed_lengths = []

        def run(self):
            self.work.run(50)
            self.observed_lengths.append(len(self.work.items))
            if len(self.work.items) == 50:
                self.work.finish = True  # flow → running work
            if self.work.has_succeeded:
                self.stop()

    app = LightningApp(Root(), cluster=cluster).start()
    app.wait(60)
    work = app.root.work
    pids = {p.pid for p in psutil.Process().children(recursive=True)}
    assert work.pid != os.getpid()
    assert work.pid in pids, "the work ran in one of the cluster's worker processes"
    assert work.items == list(range(50))
    assert app.root.observed_lengths == sorted(app.root.observed_lengths)


def test_long_running_works_do_not_block_each_other(cluster):
    # 2 worker processes × 2 threads = 4 task slots; 8 works that all wait for the flow must all start.
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.works = [Reporter() for _ in range(8)]

        def run(self):
            for work in self.works:
                work.run(1)
            if all(work.is_running for work in self.works):
                for work in self.works:
                    work.finish = True
            if all(work.has_succeeded for work in self.works):
                self.stop()

    app = LightningApp(Root(), cluster=cluster).start()
    app.wait(60)
    assert all(w.items == [0] for w in app.root.works)


def test_a_work_keeps_its_state_and_private_attributes_across_calls(cluster):
    class Accumulates(LightningWork):
        def __init__(self):
            super().__init__()
            self.total = 0
            self.loaded_once = 0

        def run(self, amount):
            if not hasattr(self, "_model"):
                self._model = object()  # expensive set-up, kept between calls on the same worker
                self.loaded_once += 1
            self.total += amount

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Accumulates()

        def run(self):
            self.work.run(1)
            self.work.run(2)
            self.work.run(3)
            self.stop()

    app = LightningApp(Root(), cluster=cluster).start()
    app.wait(60)
    assert app.root.work.total == 6
    assert app.root.work.loaded_once == 1


def test_failure_reaches_the_app_within_a_second_with_the_traceback(cluster):
    class Broken(LightningWork):
        def __init__(self):
            super().__init__(parallel=True)
            self.raised_at = 0.0

        def run(self):
            self.raised_at = time.time()  # the work's own clock (same machine): when it raised
            raise ZeroDivisionError("no data")

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Broken()

        def run(self):
            self.work.run()

    app = LightningApp(Root(), cluster=cluster).start()
    with pytest.raises(AppFailed, match=r"(?s)root\.work failed.*ZeroDivisionError: no data") as failure:
        app.wait(30)
    seen_at = time.time()  # app.wait() returns as soon as the app has failed
    raised_at = app.root.work.raised_at
    assert raised_at > 0, "the work's last value arrives with its failure"
    assert 0 <= seen_at - raised_at < 1.0, f"the failure took {seen_at - raised_at:.2f} s to reach the app"
    assert app.stage == "failed"
    assert failure.value.work_name == "root.work"
    assert app.root.work.has_failed
    assert "raise ZeroDivisionError" in str(failure.value)


def test_unknown_resource_fails_the_work_clearly_instead_of_hanging(cluster):
    class NeedsGPU(LightningWork):
        def __init__(self):
            super().__init__(cloud_compute=CloudCompute("gpu"), raise_exception=False)

        def run(self):
            pass

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = NeedsGPU()

        def run(self):
            self.work.run()
            if self.work.has_failed:
                self.stop()

    app = LightningApp(Root(), cluster=cluster).start()
    app.wait(30)
    assert "no worker" in app.root.work.status.message
    assert "GPU=1" in app.root.work.status.message


def test_cloud_compute_lands_on_a_worker_offering_the_resource():
    from lightnb.runtime.cluster import start_local_cluster

    class OnGPU(LightningWork):
        def __init__(self):
            super().__init__(cloud_compute=CloudCompute("gpu"))
            self.worker = ""

        def run(self):
            from distributed import get_worker

            self.worker = get_worker().address

    with start_local_cluster(n_workers=1, resources={"GPU": 1}) as gpu_cluster:
        app = LightningApp(OnGPU(), cluster=gpu_cluster).start()
        app.wait(60)
        assert app.root.work.worker in gpu_cluster.scheduler_info["workers"]


def test_unpicklable_work_and_arguments_are_named(cluster):
    import threading

    class HoldsLock(LightningWork):
        def __init__(self):
            super().__init__()
            self._lock = threading.Lock()

        def run(self):
            pass

    app = LightningApp(HoldsLock(), cluster=cluster).start()
    with pytest.raises(AppFailed, match=r"root\.work \(.*HoldsLock\) cannot be pickled.*lock"):
        app.wait(30)


def test_stopping_a_running_python_work_runs_on_exit_on_its_worker(cluster, tmp_path):
    marker = tmp_path / "exited"

    class Loops(LightningWork):
        def __init__(self):
            super().__init__(parallel=True)
            self.ticks = 0

        def run(self):
            while True:
                self.ticks += 1
                time.sleep(0.01)

        def on_exit(self):
            marker.write_text(str(os.getpid()))

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Loops()

        def run(self):
            self.work.run()
            if self.work.ticks > 5:
                self.work.stop()
            if self.work.has_stopped:
                self.stop()

    app = LightningApp(Root(), cluster=cluster).start()
    app.wait(30)
    assert app.root.work.has_stopped
    # It stopped where it ran, after on_exit — not cancelled from the outside.
    assert app.root.work.status.message == "stopped by the app"
    assert int(marker.read_text()) != os.getpid()


def test_unreachable_scheduler_fails_start_quickly_naming_it():
    from lightnb.runtime.cluster import ClusterError

    class Root(LightningFlow):
        def run(self):
            pass

    app = LightningApp(Root(), cluster="tcp://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"127\.0\.0\.1:9"):
        app.start()
    assert time.monotonic() - started < 8
    assert app.stage == "not_started"


def test_cluster_spec_names_a_cluster_class_and_a_missing_package_is_named():
    from lightnb.runtime.cluster import ClusterError

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Reporter(parallel=False)

        def run(self):
            self.work.finish = True
            self.work.run(3)
            self.stop()

    spec = {"class": "distributed.LocalCluster",
            "kwargs": {"n_workers": 1, "processes": True, "host": "127.0.0.1", "dashboard_address": None}}
    app = LightningApp(Root(), cluster=spec).start()
    app.wait(60)
    assert app.root.work.items == [0, 1, 2]

    missing = LightningApp(Root(), cluster={"class": "dask_nowhere.FarCluster"})
    with pytest.raises(ClusterError, match="package 'dask_nowhere' is not installed"):
        missing.start()


SCRIPT_PRELUDE = """
import os, sys, time
from lightnb import LightningApp, LightningFlow, LightningWork
"""


def run_script(tmp_path: Path, body: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "app_script.py"
    script.write_text(SCRIPT_PRELUDE + textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp_path)


def test_classes_defined_in_a_scripts_main_run_on_workers_and_nothing_is_left_behind(tmp_path):
    result = run_script(tmp_path, """
        import psutil

        def helper(x):  # a __main__ function used by the work
            return x * 2

        class Doubler(LightningWork):
            def __init__(self):
                super().__init__()
                self.out = 0
                self.pid = 0
            def run(self, x):
                self.pid = os.getpid()
                self.out = helper(x)

        class Root(LightningFlow):
            def __init__(self):
                super().__init__()
                self.work = Doubler()
            def run(self):
                self.work.run(21)
                self.stop()

        if __name__ == "__main__":
            app = LightningApp(Root())
            app.start()
            app.wait(60)
            print("OUT", app.root.work.out, app.root.work.pid != os.getpid())
            # multiprocessing's resource tracker is Python's, not the app's: it ends with this process.
            left = [p.pid for p in psutil.Process().children(recursive=True)
                    if "resource_tracker" not in " ".join(p.cmdline())]
            print("LEFT", *left)
    """)
    assert result.returncode == 0, result.stderr
    assert "OUT 42 True" in result.stdout
    # The embedded cluster stays warm for a next app of the process until the process ends: then nothing
    # of it is left.
    pids = [int(pid) for pid in result.stdout.split("LEFT")[1].split()]
    processes = [psutil.Process(pid) for pid in pids if psutil.pid_exists(pid)]
    _, alive = psutil.wait_procs(processes, timeout=20)
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == [], "the script's end ends the cluster"
    assert "Port 8787" not in result.stderr


def test_a_killed_worker_fails_the_work_once_and_it_is_not_run_again(tmp_path):
    runs = tmp_path / "runs"
    result = run_script(tmp_path, f"""
        class Dies(LightningWork):
            def run(self):
                with open({str(runs)!r}, "a") as f:
                    f.write("run\\n")
                os.kill(os.getpid(), 9)

        if __name__ == "__main__":
            app = LightningApp(Dies())
            app.start()
            try:
                app.wait(60)
            except Exception as error:
                print("FAILED", error)
    """)
    assert result.returncode == 0, result.stderr
    assert "FAILED" in result.stdout
    assert "worker process running root.work died" in result.stdout
    assert runs.read_text().count("run") == 1


def test_a_local_module_the_workers_cannot_import_is_shipped_by_value(cluster, tmp_path, monkeypatch):
    # A helper module next to the notebook, importable here only (the workers started before it existed).
    (tmp_path / "notebook_helpers.py").write_text(textwrap.dedent("""
        from lightnb import LightningWork

        def square(x):
            return x * x

        class Squarer(LightningWork):
            def __init__(self):
                super().__init__()
                self.result = 0

            def run(self, x):
                self.result = square(x)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import notebook_helpers

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = notebook_helpers.Squarer()

        def run(self):
            self.work.run(7)
            self.stop()

    app = LightningApp(Root(), cluster=cluster).start()
    app.wait(60)
    assert app.root.work.result == 49


def test_a_value_set_from_a_cell_reaches_the_running_work(cluster):
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Reporter()

        def run(self):
            self.work.run(3)
            if self.work.has_succeeded:
                self.stop()

    app = LightningApp(Root(), cluster=cluster).start()
    wait_until(lambda: app.root.work.is_running and len(app.root.work.items) == 3)
    app.root.work.finish = True  # what a notebook cell or a form does
    app.wait(30)
    assert app.root.work.has_succeeded


def test_on_a_cluster_lightnb_did_not_configure_a_dead_worker_still_means_one_run(tmp_path):
    # A plain LocalCluster retries a task whose worker died (allowed-failures=3): lightnb refuses the re-run.
    from distributed import LocalCluster

    runs = tmp_path / "runs"

    class DiesOnce(LightningWork):
        def __init__(self):
            super().__init__(raise_exception=False)
            self.began = False

        def run(self):
            with open(runs, "a") as f:
                f.write("run\n")
            self.began = True  # reported before the process dies: the refused re-run must still be heard
            time.sleep(0.5)
            os.kill(os.getpid(), 9)

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = DiesOnce()

        def run(self):
            self.work.run()
            if self.work.has_failed:
                self.stop()

    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as plain:
        app = LightningApp(Root(), cluster=plain).start()
        app.wait(120)
    assert app.root.work.began
    assert "died" in app.root.work.status.message
    assert runs.read_text().count("run") == 1


class Quick(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.done = False

    def run(self):
        self.done = True


def test_stopping_a_work_whose_call_finished_leaves_it_stopped_and_the_flow_goes_on(cluster):
    # The rule, the same for a running work, a finished one and one never called: after work.stop() the work
    # has_stopped (a flow waiting for it once waited forever when the call had already succeeded).
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.quick = Quick()
            self.never = Quick()
            self.seen = []

        def run(self):
            self.quick.run()
            if self.quick.has_succeeded and not self.seen:
                self.seen = ["succeeded"]
                self.quick.stop()
                self.never.stop()
            if self.seen and self.quick.has_stopped and self.never.has_stopped:
                self.seen = [*self.seen, self.quick.status.message, self.never.status.stage.value]
                self.stop("both stopped")

    app = LightningApp(Root(), cluster=cluster).start()
    app.wait(60)
    assert app.end_message == "both stopped"
    assert app.root.seen == ["succeeded", "stopped after the call had succeeded", "stopped"]
    assert app.root.quick.done  # it ran, once, and is stopped now


def test_a_scheduler_that_dies_under_a_running_app_ends_it_with_a_clear_message(tmp_path):
    import json
    import signal

    scheduler_file = tmp_path / "scheduler.json"
    processes = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port",
                                   "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        wait_until(lambda: scheduler_file.exists() and scheduler_file.stat().st_size > 0, 60)
        time.sleep(0.3)  # the file is written in one go; be sure it is whole
        address = json.loads(scheduler_file.read_text())["address"]
        processes.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--no-nanny",
                                           "--host", "127.0.0.1", "--no-dashboard"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        app = LightningApp(Reporter(), cluster=address).start()
        wait_until(lambda: app.root.work.is_running, 60)
        processes[0].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        with pytest.raises(AppFailed, match=f"lost the scheduler at {address}"):
            app.wait(60)
        assert time.monotonic() - killed < 20  # seconds, not for ever
        assert app.stage == "failed" and app.root.work.status.stage in ("failed", "stopped")
    finally:
        for process in processes:
            process.kill()
            process.wait(15)


def test_a_worker_removal_names_the_calls_it_ran_and_nothing_else():
    from lightnb.runtime.dask import calls_lost_with_worker

    running = {"lightnb-a-root.x-1": ("root.x", "1"), "lightnb-a-root.y-2": ("root.y", "2")}
    removal = {"action": "remove-worker", "worker": "tcp://10.0.0.3:4000",
               "processing-tasks": {"lightnb-a-root.x-1", "someone-elses-task"}}
    assert calls_lost_with_worker(removal, running) == [("root.x", "1", "tcp://10.0.0.3:4000")]
    assert calls_lost_with_worker({**removal, "processing-tasks": set()}, running) == []
    assert calls_lost_with_worker({"action": "add-worker", "worker": "tcp://10.0.0.3:4000"}, running) == []
    assert calls_lost_with_worker("not a dict", running) == []


def test_a_scheduler_is_lost_only_after_its_silence_outlasts_the_window(monkeypatch):
    from lightnb.runtime.dask import SCHEDULER_SILENCE_SECONDS, scheduler_lost, scheduler_silence

    assert not scheduler_lost(100.0, 109.9, 10.0) and scheduler_lost(100.0, 110.1, 10.0)
    monkeypatch.setenv("LIGHTNB_SCHEDULER_SILENCE", "30")
    assert scheduler_silence() == 30.0
    monkeypatch.setenv("LIGHTNB_SCHEDULER_SILENCE", "soon")
    assert scheduler_silence() == SCHEDULER_SILENCE_SECONDS


def test_the_storage_probe_tells_a_worker_that_sees_the_folder_from_one_that_does_not(tmp_path):
    from lightnb.runtime.probe import _remove, _write_marker, describe_worker

    folder = tmp_path / "storage" / "not-made-yet"
    marker = _write_marker(str(folder))
    assert marker is not None and Path(marker).parent == tmp_path  # in the nearest folder there is
    assert not folder.exists()
    assert describe_worker(marker)["sees_storage"]  # a worker on this host
    assert not describe_worker(str(tmp_path / "elsewhere" / Path(marker).name))["sees_storage"]  # another host
    _remove(marker)
    assert list(tmp_path.iterdir()) == []


class Counting(LightningWork):
    """Waits for the flow's go (so that all stream at once), then counts up, a value every millisecond."""

    def __init__(self):
        super().__init__(parallel=True)
        self.counter = 0
        self.go = False

    def run(self, until):
        while not self.go:
            time.sleep(0.005)
            self.check_stop()
        for value in range(1, until + 1):
            self.counter = value
            time.sleep(0.001)


def test_works_streaming_at_once_share_messages_and_every_value_arrives_in_order(cluster, monkeypatch):
    """The calls of an app in one worker process send their batches together (one message per flush): fewer
    messages than batches reach the scheduler, and each work's values still reach the flow in order, its
    last value and its success included. (The scheduler route, read on the scheduler; the direct route is
    checked in test_direct.py.)"""
    from distributed import Client

    monkeypatch.setenv("LIGHTNB_DIRECT_STREAM", "0")

    from lightnb.runtime.dask import events_topic
    from lightnb.runtime.worker import loads_batches

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.works = [Counting() for _ in range(20)]
            self._observed = [[] for _ in range(20)]

        def run(self):
            for index, work in enumerate(self.works):
                work.run(300)
                self._observed[index].append(work.counter)
            if all(work.is_running for work in self.works):
                for work in self.works:
                    work.go = True  # flow → running works: they stream at once
            if all(work.has_succeeded for work in self.works):
                self.stop()

    app = LightningApp(Root(), cluster=cluster).start()
    app.wait(120)
    root = app.root
    assert [work.counter for work in root.works] == [300] * 20
    for observed in root._observed:
        assert observed == sorted(observed), "a work's values reach the flow in the order it set them"
    with Client(cluster) as client:
        messages = [loads_batches(data) for _, data in client.get_events(events_topic(app.app_id))]
    batches = [batch for message in messages for batch in message]
    assert len(messages) < len(batches), "the calls running in one worker process share messages"
    assert max(len({batch.work_name for batch in message}) for message in messages) > 1
    for work in root.works:
        # The scheduler keeps a topic's last 1000 events only: a call's batches there are its last ones (if any).
        seqs = [batch.seq for batch in batches if batch.work_name == work.name]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True, \
            "every batch of a call, each once, in order (none overtaken)"
