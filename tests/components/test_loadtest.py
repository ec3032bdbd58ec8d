"""LoadTest on a real cluster: Locust in a worker's subprocess loading a FastAPI app served on loopback."""

from __future__ import annotations

import pytest
from components_support import wait_for

from lightnb import LightningApp, LightningFlow
from lightnb.components import LoadTest
from lightnb.components._serving import LOOPBACK, serve_asgi


@pytest.fixture(scope="module")
def target():
    """A FastAPI app on loopback, in the test process: ``POST /echo`` answers, ``POST /boom`` fails (500)."""
    from fastapi import FastAPI, HTTPException

    app = FastAPI()

    @app.post("/echo")
    def echo(body: dict) -> dict:
        return {"got": body}

    @app.post("/boom")
    def boom() -> dict:
        raise HTTPException(500, "broken on purpose")

    server, port = serve_asgi(app, LOOPBACK, None, "target")
    url = f"http://{LOOPBACK}:{port}/"
    wait_for(lambda: server.alive(), timeout=10, what="the target server")
    yield url
    server.stop()


class Load(LightningFlow):
    """Loads both endpoints at once and records, on every pass, what the good one's figures were."""

    def __init__(self, url: str):
        super().__init__()
        self.good = LoadTest(url, path="/echo", json={"inputs": [[0.5]]}, users=2, spawn_rate=10, duration=5)
        self.bad = LoadTest(url, path="/boom", users=1, duration=2)
        self.seen: list = []

    def run(self):
        self.good.run()
        self.bad.run()
        figures = (self.good.requests, self.good.progress)
        if self.good.is_running and (not self.seen or self.seen[-1] != list(figures)):
            self.seen = [*self.seen, list(figures)]
        if self.good.status.stage.is_finished and self.bad.status.stage.is_finished:
            self.stop("loaded")


def test_a_load_test_streams_its_figures_and_reports_failures_without_failing(cluster, target, worker_processes):
    flow = Load(target)
    app = LightningApp(flow, cluster=cluster)
    app.start()
    app.wait(120)

    good, bad = flow.good, flow.bad
    assert good.has_succeeded and bad.has_succeeded  # a 500 endpoint is figures, not a failed work
    # While it ran, the counts went up, several times, and the progress never went down.
    counts = [requests for requests, _ in flow.seen]
    progress = [value for _, value in flow.seen]
    assert len({c for c in counts if c > 0}) >= 2, flow.seen
    assert counts == sorted(counts) and progress == sorted(progress), flow.seen
    assert all(value < 1.0 for value in progress[:-1])  # 1.0 only once it has ended
    assert good.progress == 1.0 and bad.progress == 1.0

    assert good.requests >= counts[-1] > 0 and good.failures == 0
    # The final rps is the run's average: about requests over the ~5 s it ran.
    assert good.requests / 7 < good.rps < good.requests / 4
    assert 0 < good.p50_ms <= good.p95_ms <= good.p99_ms

    assert bad.requests > 0 and bad.failures == bad.requests
    worker_processes.assert_none_left()


class LoadForLong(LightningFlow):
    def __init__(self, url: str):
        super().__init__()
        self.load = LoadTest(url, path="/echo", json={}, users=1, duration=600)

    def run(self):
        self.load.run()


def test_stopping_the_app_ends_a_running_load_test_and_its_processes(cluster, target, worker_processes):
    flow = LoadForLong(target)
    app = LightningApp(flow, cluster=cluster)
    app.start()
    try:
        wait_for(lambda: flow.load.requests > 0, timeout=60, what="the first requests")
        assert worker_processes.started()  # Locust runs in a process of its own
    finally:
        app.stop()
    assert flow.load.has_stopped
    worker_processes.assert_none_left()


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="url must be the address of an HTTP server"):
        LoadTest("localhost:8000")
    with pytest.raises(ValueError, match="path must start with '/'"):
        LoadTest("http://127.0.0.1:1", path="predict")
    with pytest.raises(ValueError, match="users must be a whole number ≥ 1, not 0"):
        LoadTest("http://127.0.0.1:1", users=0)
    with pytest.raises(ValueError, match="duration must be a number > 0"):
        LoadTest("http://127.0.0.1:1", duration=-1)
    with pytest.raises(TypeError, match="json must be a JSON value"):
        LoadTest("http://127.0.0.1:1", json={"x": object()})
