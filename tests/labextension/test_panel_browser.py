"""The "Lightning apps" side panel in a real headless Chromium, against a real JupyterLab, kernel and Dask
cluster: the panel shows the app, its stages change, its progress moves, the work's page opens in a tab
through jupyter-server-proxy, "stop" stops the app in the kernel (labextension/ui-tests/panel.e2e.mjs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "labextension"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

LOAD = "%load_ext lightnb"

START_APP = textwrap.dedent('''\
    import http.server
    import threading
    import time

    from lightnb import LightningApp, LightningFlow, LightningWork


    class TrainWork(LightningWork):
        """Reports its progress for a few seconds, then succeeds."""

        def __init__(self):
            super().__init__(parallel=True)
            self.progress = 0.0

        def run(self):
            for step in range(1, 41):
                time.sleep(0.1)
                self.progress = step / 40
            print("trained 40 steps")


    class PageWork(LightningWork):
        """Serves a small page on loopback, reporting its progress, until stopped."""

        def __init__(self):
            super().__init__(parallel=True)
            self.progress = 0.0
            self.url = ""

        def run(self):
            class Page(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = b"<html><body><h1>lightnb e2e page</h1></body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *args):
                    pass

            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            try:
                self.url = f"http://127.0.0.1:{server.server_port}/"
                step = 0
                while True:  # until stopped: the next attribute set raises WorkStopped
                    time.sleep(0.1)
                    step += 1
                    self.progress = min(0.95, step / 400)
            finally:
                server.shutdown()
                server.server_close()


    class Serve(LightningFlow):
        def __init__(self):
            super().__init__()
            self.page = PageWork()

        def run(self):
            self.page.run()


    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.train = TrainWork()
            self.serve = Serve()

        def run(self):
            self.train.run()
            self.serve.run()


    app = LightningApp(Root(), name="PanelDemo")
    app.start()
''')

REPORT = 'print("APP STAGE:", app.stage)'

SHOW_PANEL = "%lightnb view --panel"


def write_notebook(path: Path, *sources: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path.name


@pytest.fixture
def notebook(jupyter_lab) -> str:
    return write_notebook(jupyter_lab.root / "panel_e2e.ipynb", LOAD, START_APP, REPORT, SHOW_PANEL)


@pytest.fixture
def other_notebook(jupyter_lab) -> str:
    """A notebook whose kernel never loads lightnb."""
    return write_notebook(jupyter_lab.root / "other.ipynb", "print('no lightnb here')")


def test_panel_shows_and_controls_the_apps_of_the_notebook(jupyter_lab, notebook: str, other_notebook: str,
                                                           node_modules: Path) -> None:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/setup does)"
    node = shutil.which("node")
    assert node, "node is missing: install Node.js >= 18"
    ARTIFACTS.mkdir(exist_ok=True)
    env = {**os.environ, "LAB_URL": jupyter_lab.url, "LAB_TOKEN": jupyter_lab.token, "NOTEBOOK": notebook,
           "OTHER_NOTEBOOK": other_notebook, "ARTIFACTS": str(ARTIFACTS), "CHROMIUM": CHROMIUM}
    try:
        done = subprocess.run([node, "ui-tests/panel.e2e.mjs"], cwd=LABEXTENSION, env=env, capture_output=True,
                              text=True, timeout=300)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the browser test ran over 300 s:\n{error.stdout}\n{error.stderr}\n"
                    f"JupyterLab log:\n{jupyter_lab.log_tail()}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("E2E-RESULT ")]
    assert lines, (f"the browser test printed no result (exit code {done.returncode}):\n{done.stdout}\n"
                   f"{done.stderr}\nJupyterLab log:\n{jupyter_lab.log_tail()}")
    result = json.loads(lines[-1].removeprefix("E2E-RESULT "))
    assert result["ok"], (f"{result['error']}\nnotifications: {result.get('toasts')}\n"
                          f"cell errors: {result.get('cellErrors')}\nsteps:\n" +
                          "\n".join(result["steps"]) +
                          f"\n{done.stderr[-3000:]}\nJupyterLab log:\n{jupyter_lab.log_tail()}")
    assert done.returncode == 0
    # What the user saw, step by step: the works' stages changed, the progress moved, the page opened.
    assert result["trainStages"][-1] == "succeeded", result["trainStages"]
    stages = result["workStages"]
    assert "running" in stages and stages[-1] == "stopped", stages
    assert result["appStages"][-1] == "stopped", result["appStages"]
    first, later, _ = result["progress"]
    assert 0 < first < later <= 1
    assert result["pageStatusAfterStop"] >= 500  # the work's server ended when the work was stopped
    assert (ARTIFACTS / "panel.png").stat().st_size > 1000


# -- the notebook's own views (AppView, ParamsForm) and the panel, telling only what is true ---------------
VIEWS_APP = textwrap.dedent('''\
    import http.server
    import threading
    import time

    from lightnb import LightningApp, LightningFlow, LightningWork
    from lightnb.runtime.cluster import start_local_cluster
    from lightnb.ui import ParamsForm


    class PageWork(LightningWork):
        """Prints a summary in ANSI colours (as Lightning does), then serves a page until stopped."""

        def __init__(self):
            super().__init__(parallel=True)
            self.url = ""
            self.progress = 0.0
            self.metrics = {}

        def run(self):
            class Page(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = b"<html><body><h1>lightnb views page</h1></body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *args):
                    pass

            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            try:
                print("\\x1b[1mTotal FLOPs\\x1b[0m: \\x1b[32m1.2 G\\x1b[0m")
                self.url = f"http://127.0.0.1:{server.server_port}/"
                step = 0
                while True:  # until stopped; metrics 20 times a second (a view shows at most 10)
                    time.sleep(0.05)
                    step += 1
                    self.progress = min(0.95, step / 2000)
                    self.metrics = {"loss": 1 / step, "accuracy": 1 - 1 / (step + 1)}
            finally:
                server.shutdown()
                server.server_close()


    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.lr: float = 0.01
            self.page = PageWork()

        def run(self):
            self.page.run()

        def configure_layout(self):
            return [{"name": "page", "content": self.page}]


    def serving(app, seconds=120):
        deadline = time.monotonic() + seconds
        while not app.root.page.url:
            assert time.monotonic() < deadline, f"{app.name} did not serve its page"
            time.sleep(0.1)


    cluster = start_local_cluster(n_workers=2)
    # The same app run twice and stopped (both kept, as cells re-run keep them in Out): the panel lists only
    # the latest run of a name.
    runs = []
    for _ in range(2):
        done = LightningApp(Root(), name="RepeatedApp", cluster=cluster)
        runs.append(done)
        done.start()
        serving(done)
        done.stop()
    app = LightningApp(Root(), name="AnAppWithAVeryLongNameThatTheSidePanelShowsWhole", cluster=cluster)
    app.start()
    serving(app)
''')

# Keeps the kernel busy (as a long "Run All" does) until the form below sets a new learning rate.
BLOCK_UNTIL_APPLIED = textwrap.dedent('''\
    deadline = time.monotonic() + 90
    while app.root.lr == 0.01 and time.monotonic() < deadline:
        time.sleep(0.05)
    print("LR NOW", app.root.lr)
''')

VIEW_CELLS = {
    "load": LOAD,
    "start": VIEWS_APP,
    "view": "app",
    "stopped_view": "done",
    "form": 'ParamsForm(app.root, ["lr"], ranges={"lr": (0, 1)})',
    "stopped_form": 'ParamsForm(done.root, ["lr"])',
    "block": BLOCK_UNTIL_APPLIED,
}


def test_views_and_panel_show_only_what_is_true(jupyter_lab, node_modules: Path) -> None:
    """The AppView, ParamsForm and panel in a real JupyterLab (labextension/ui-tests/views.e2e.mjs): the
    panel is live during a "Run All"; work output keeps its colours, not raw ANSI codes; a page is as high as
    the notebook's view and resizable, and a stopped app's page says "stopped"; a form keeps what was typed
    beside its error and refuses to apply to a stopped app; the panel keeps stopped apart from failed, shows
    whole names and only the latest ended run of a name; after a kernel restart a view says its app is gone
    and its buttons are off, with no uncaught error."""
    notebook = write_notebook(jupyter_lab.root / "views_e2e.ipynb", *VIEW_CELLS.values())
    env = {**os.environ, "LAB_URL": jupyter_lab.url, "LAB_TOKEN": jupyter_lab.token, "NOTEBOOK": notebook,
           "CELLS": json.dumps(list(VIEW_CELLS)), "ARTIFACTS": str(ARTIFACTS), "CHROMIUM": CHROMIUM}
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        done = subprocess.run([shutil.which("node") or "node", "ui-tests/views.e2e.mjs"], cwd=LABEXTENSION,
                              env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the browser test ran over 300 s:\n{error.stdout}\n{error.stderr}\n"
                    f"JupyterLab log:\n{jupyter_lab.log_tail()}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("E2E-RESULT ")]
    assert lines, (f"the browser test printed no result (exit code {done.returncode}):\n{done.stdout}\n"
                   f"{done.stderr}\nJupyterLab log:\n{jupyter_lab.log_tail()}")
    result = json.loads(lines[-1].removeprefix("E2E-RESULT "))
    problems = "".join(f"\n- {problem}" for problem in result.get("problems", []))
    assert result["ok"], (f"{result['error']}\nwhat the user would see wrong:{problems}\n"
                          f"cell errors: {result.get('cellErrors')}\nsteps:\n" +
                          "\n".join(result["steps"]) + f"\n{done.stderr[-3000:]}\n"
                          f"JupyterLab log:\n{jupyter_lab.log_tail()}")
    assert done.returncode == 0
