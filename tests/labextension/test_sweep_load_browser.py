"""How the AppView shows a Sweep (a live table of trials, the best highlighted, the value against the trial)
and a LoadTest (live requests per second and latency percentiles), in a real headless Chromium against a real
JupyterLab, kernel and Dask cluster (labextension/ui-tests/sweep_load.e2e.mjs)."""

from __future__ import annotations

import json
import textwrap

from e2e import run_e2e, write_notebook

SETUP = textwrap.dedent('''\
    import http.server
    import threading
    import time

    from lightnb import LightningApp, LightningFlow, LightningWork
    from lightnb.components import LoadTest, Sweep
    from lightnb.runtime.cluster import start_local_cluster


    class Quadratic(LightningWork):
        """(x - 2)² in three steps of a second each."""

        def __init__(self, x):
            super().__init__()
            self.x = x
            self.metrics = {}
            self.step = 0

        def run(self):
            for step in range(1, 4):
                time.sleep(1.0)
                self.metrics = {"loss": (self.x - 2) ** 2 + (3 - step) * 0.1}
                self.step = step


    class SweepRoot(LightningFlow):
        def __init__(self):
            super().__init__()
            self.sweep = Sweep(lambda params: Quadratic(**params),
                               lambda trial: {"x": trial.suggest_float("x", -3.0, 5.0)},
                               n_trials=6, concurrency=2, metric="loss")

        def run(self):
            self.sweep.run()
            if self.sweep.done:
                self.stop("swept")


    class Answer(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(0.002)
            body = b'{"outputs": [[1.0]]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass


    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=target.serve_forever, daemon=True).start()


    class LoadRoot(LightningFlow):
        def __init__(self):
            super().__init__()
            self.load = LoadTest(f"http://127.0.0.1:{target.server_port}", path="/predict",
                                 json={"inputs": [[0.5]]}, users=2, duration=12)

        def run(self):
            self.load.run()
            if self.load.status.stage.is_finished:
                self.stop("loaded")


    cluster = start_local_cluster(n_workers=2)
''')

CELLS = {
    "load": "%load_ext lightnb",
    "setup": SETUP,
    "sweep": 'sweep_app = LightningApp(SweepRoot(), name="SweepDemo", cluster=cluster)\nsweep_app.start()\nsweep_app',
    "loadtest": 'load_app = LightningApp(LoadRoot(), name="LoadDemo", cluster=cluster)\nload_app.start()\nload_app',
}


def test_appview_shows_a_sweep_and_a_load_test_live(jupyter_lab) -> None:
    """A real sweep of six trials: its rows are seen running, then complete; the best row (the lowest loss)
    is highlighted and its chart has a point per finished trial. A load test against a small loopback
    server: requests per second and p50/p95/p99 are numbers that update while it runs, and its chart grows."""
    notebook = write_notebook(jupyter_lab.root / "sweep_load_e2e.ipynb", *CELLS.values())
    result = run_e2e("sweep_load.e2e.mjs", {"NOTEBOOK": notebook, "CELLS": json.dumps(list(CELLS))}, jupyter_lab,
                     timeout=420)
    final = result["sweepFinal"]
    assert len(final["rows"]) == 6 and final["points"] == 6
    assert sum(row["best"] for row in final["rows"]) == 1
    assert len([s for s in result["loadSamples"] if int(s["figures"]["requests"]) > 0]) >= 3
