"""The reference's API that existing Lightning apps use, on a real Dask cluster: a work serving on its own
``host``/``port`` (url reachable from here), a child made onto a placeholder, ``work.delete()``, schedules
that wake an idle app, ``Drive.get(timeout=)``, ``CloudCompute`` on the embedded cluster of a machine without
the resource, and ``log_level``."""

from __future__ import annotations

import http.server
import logging
import os
import socket
import threading
import time
import urllib.request
import warnings

import pytest

from lightnb import CloudCompute, Drive, LightningApp, LightningFlow, LightningWork
from lightnb.structures import Dict, List


def wait_for(predicate, timeout=60.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class HelloServer(LightningWork):
    """A reference-style server work: it serves on self.host / self.port until it is stopped."""

    def __init__(self, **kwargs):
        super().__init__(parallel=True, **kwargs)

    def run(self):
        class Hello(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                body = f"hello from {os.getpid()}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer((self.host, self.port), Hello)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            while True:
                time.sleep(0.05)
                self.check_stop()
        finally:
            server.shutdown()
            server.server_close()


class Serving(LightningFlow):
    def __init__(self, port=None):
        super().__init__()
        self.server = None  # made on the first pass, as reference apps do
        self._port = port

    def run(self):
        if self.server is None:
            self.server = HelloServer(port=self._port)
        self.server.run()


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_a_work_serves_on_the_port_it_gets_and_the_flow_sees_its_url(cluster):
    flow = Serving()
    app = LightningApp(flow, cluster=cluster).start()
    try:
        url = wait_for(lambda: flow.server is not None and flow.server.url, what="the server's url")
        port = flow.server.port
        assert url == f"http://127.0.0.1:{port}"
        assert flow.server.internal_ip  # the address of the machine it runs on
        pid = int(wait_for(lambda: _answer(url), what="an answer").rsplit(" ", 1)[1])
        assert pid != os.getpid()  # served from a worker process
        assert "url" in flow.server.state["vars"]
    finally:
        app.stop()
    assert flow.server.has_stopped
    with pytest.raises(OSError):
        get(url)


def test_a_given_port_is_served_and_known_from_the_call_start(cluster):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    flow = Serving(port=port)
    app = LightningApp(flow, cluster=cluster).start()
    try:
        assert wait_for(lambda: flow.server is not None and flow.server.url) == f"http://127.0.0.1:{port}"
        wait_for(lambda: _answer(f"http://127.0.0.1:{port}"), what="an answer on the given port")
    finally:
        app.stop()


def _answer(url):
    try:
        return get(url)
    except OSError:
        return None


class Sleeper(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.started = False

    def run(self):
        self.started = True
        while True:
            time.sleep(0.05)
            self.check_stop()


class Deleting(LightningFlow):
    def __init__(self):
        super().__init__()
        self.sleeper = Sleeper()
        self.pool = Dict(a=Sleeper())
        self.delete_now = False
        self.gone = False

    def run(self):
        if self.sleeper is not None:
            self.sleeper.run()
        for work in self.pool.values():
            work.run()
        if self.delete_now and self.sleeper is not None:
            self._deleted = self.sleeper
            self.sleeper.delete()
            self.pool["a"].delete()
        if self.sleeper is None and self._deleted.has_stopped:
            self.gone = True


def test_delete_stops_a_running_work_and_removes_it_from_the_app(cluster):
    flow = Deleting()
    app = LightningApp(flow, cluster=cluster).start()
    try:
        wait_for(lambda: flow.sleeper.started and flow.pool["a"].started, what="the works to run")
        flow.delete_now = True
        wait_for(lambda: flow.gone, what="the deleted work to stop")
        assert "sleeper" not in app.state["works"] and app.state["structures"]["pool"]["works"] == {}
        assert app.stage == "running"
    finally:
        app.stop()


class Step(LightningWork):
    def __init__(self):
        super().__init__()
        self.done_at = 0.0

    def run(self, tick):
        self.done_at = time.time()


class ScheduledDAG(LightningFlow):
    """The reference's dag example, every second: each schedule tick runs a pipeline of two works."""

    def __init__(self):
        super().__init__()
        self.dags = List()
        self.ticks = 0
        self.completed = 0

    def run(self):
        if self.schedule("* * * * * *"):  # a 6th field: seconds (the example: "*/2 * * * *")
            self.ticks += 1
            self.dags.append(Dag())
        self.completed = sum(dag.done for dag in self.dags)
        for dag in self.dags:
            if not dag.done:
                dag.run()
        if self.completed >= 3:
            self.stop(f"{self.completed} pipelines ran")


class Dag(LightningFlow):
    def __init__(self):
        super().__init__()
        self.extract = Step()
        self.train = Step()
        self.done = False

    def run(self):
        self.extract.run("extract")
        self.train.run("train")  # blocking calls: in order
        self.done = self.train.has_succeeded


def test_a_schedule_wakes_the_idle_app_and_each_tick_runs_a_pipeline(cluster):
    flow = ScheduledDAG()
    app = LightningApp(flow, cluster=cluster).start()
    app.wait(60)
    assert app.stage == "stopped" and flow.completed >= 3
    for dag in list(flow.dags)[:3]:
        assert dag.extract.done_at <= dag.train.done_at


class Producer(LightningWork):
    def __init__(self, drive):
        super().__init__(parallel=True)
        self.drive = drive

    def run(self):
        time.sleep(1.0)  # the consumer is already waiting for the file
        with open(os.path.join(self.drive.root_folder, "late.txt"), "w") as file:
            file.write("worth the wait")
        self.drive.put("late.txt")


class Consumer(LightningWork):
    def __init__(self, drive):
        super().__init__(parallel=True)
        self.drive = drive
        self.text = ""
        self.missing = ""

    def run(self):
        try:
            self.drive.get("never.txt", timeout=0.3)
        except FileNotFoundError as error:
            self.missing = str(error)
        path = self.drive.get("late.txt", timeout=30, overwrite=True)
        self.text = path.read_text()


class Waiting(LightningFlow):
    def __init__(self, folder):
        super().__init__()
        self.consumer = Consumer(Drive("lit://shared", root_folder=folder / "consumer"))
        self.producer = Producer(Drive("lit://shared", root_folder=folder / "producer"))

    def run(self):
        self.consumer.run()
        self.producer.run()
        if self.consumer.has_succeeded:
            self.stop("got it")


def test_drive_get_waits_for_a_file_another_work_puts_later(cluster, tmp_path):
    (tmp_path / "consumer").mkdir()
    (tmp_path / "producer").mkdir()
    flow = Waiting(tmp_path)
    app = LightningApp(flow, cluster=cluster, storage=str(tmp_path / "storage")).start()
    app.wait(60)
    assert flow.consumer.text == "worth the wait"
    assert (tmp_path / "consumer" / "late.txt").read_text() == "worth the wait"
    assert "waited 0.3 s" in flow.consumer.missing


class OnGpu(LightningWork):
    def __init__(self):
        super().__init__(cloud_compute=CloudCompute("gpu"))
        self.ran = 0

    def run(self, n):
        self.ran += 1


class Twice(LightningFlow):
    def __init__(self):
        super().__init__()
        self.trainer = OnGpu()

    def run(self):
        self.trainer.run(1)
        self.trainer.run(2)
        if self.trainer.ran == 2 and self.trainer.has_succeeded:
            self.stop("trained")


def test_a_gpu_work_runs_on_the_embedded_cluster_of_a_machine_without_one_and_says_so_once(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = LightningApp(Twice(), cluster={"n_workers": 1}, storage=str(tmp_path)).start()
        app.wait(120)
    assert app.stage == "stopped" and app.root.trainer.ran == 2
    told = [line for line in app.logs("root.trainer") if "GPU=1" in line]
    assert len(told) == 1, app.logs("root.trainer")
    assert "root.trainer asks for GPU=1" in told[0] and "runs on what the machine has" in told[0]
    assert [str(w.message) for w in caught if "GPU=1" in str(w.message)][:1], "no Python warning"


def test_a_gpu_work_on_the_embedded_cluster_of_a_machine_with_one_runs_without_a_warning(tmp_path, monkeypatch):
    from lightnb.runtime import dask

    monkeypatch.setattr(dask, "machine_has", lambda resource: resource == "GPU")  # as on a GPU machine
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = LightningApp(Twice(), cluster={"n_workers": 1}, storage=str(tmp_path)).start()
        app.wait(120)
    assert app.stage == "stopped" and app.root.trainer.ran == 2
    assert not [line for line in app.logs("root.trainer") if "GPU=1" in line]
    assert not [w for w in caught if "GPU=1" in str(w.message)]


def test_log_level_debug_logs_the_calls_sent(cluster, caplog):
    with pytest.raises(ValueError, match="log_level must be one of 'info', 'debug', not 'loud'"):
        LightningApp(Twice(), log_level="loud")

    class Quick(LightningWork):
        def run(self):
            pass

    with caplog.at_level(logging.DEBUG, logger="lightnb"):
        app = LightningApp(Quick(), cluster=cluster, log_level="DEBUG").start()
        app.wait(60)
    assert app.log_level == "debug"
    assert any("sending call" in record.getMessage() and "root.work" in record.getMessage()
               for record in caplog.records)
    logging.getLogger("lightnb").setLevel(logging.NOTSET)


class SourceFile(LightningWork):
    """The reference's "boring app": a lit:// string set as state is a Path the work writes."""

    def __init__(self):
        super().__init__()
        self.boring_path = None

    def run(self):
        self.boring_path = "lit://boring_data"
        with open(self.boring_path, "w", encoding="utf-8") as file:
            file.write(f"written by {os.getpid()}")


class DestinationFile(LightningWork):
    def __init__(self):
        super().__init__()
        self.text = ""

    def run(self, path):
        with open(path, encoding="utf-8") as file:
            self.text = file.read()


class Boring(LightningFlow):
    def __init__(self):
        super().__init__()
        self.source = SourceFile()
        self.dest = DestinationFile()

    def run(self):
        self.source.run()
        if self.source.boring_path:
            self.dest.run(self.source.boring_path)
        if self.dest.has_succeeded:
            self.stop("handed over")


def test_a_lit_path_a_work_writes_reaches_another_work(cluster, tmp_path):
    shared = tmp_path / "lit"  # where lit:// paths live for the works (default: ./.storage where they run)
    flow = Boring()
    app = LightningApp(flow, cluster=cluster, storage=str(tmp_path / "storage"),
                       env={"STORAGE_ROOT_DIR": str(shared)}).start()
    app.wait(60)
    assert flow.dest.text.startswith("written by ")
    assert flow.source.state["vars"]["boring_path"]["path"] == str(shared / "boring_data")
    assert flow.source.boring_path.origin_name == "root.source"
