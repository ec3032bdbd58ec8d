"""Web frontends of flows with real servers: a static page served and shown in headless Chromium (through the
notebook server's proxy), a Panel page, a layout mixing a frontend, a work's page and a URL, AppState's
reads, writes and refusals, bad input, `lightnb run` printing the page's address, and nothing left behind
(the app's end, Ctrl-C, a killed process)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.frontend import (
    Frontend,
    PanelFrontend,
    StaticWebFrontend,
    StreamlitFrontend,
    app_state,
    running_frontends,
)
from lightnb.frontend.runner import frontends_of
from lightnb.ui.layout import layout_tabs
from lightnb.ui.model import describe
from lightnb.utilities.state import AppState, AppStateError, _Shown

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def status_of(url: str) -> int | None:
    """The HTTP status ``url`` answers with; None when nothing listens."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def wait_until(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def page_shows(browser_tools: Path, url: str, text: str, then: str | None = None, meanwhile=None) -> dict:
    """Open ``url`` in headless Chromium and wait until it shows ``text``; with ``then``, call ``meanwhile()``
    once it does and wait, the page left open, until it shows ``then`` too."""
    env = {**os.environ, "PAGE_URL": url, "EXPECT": text, "CHROMIUM": CHROMIUM, **({"THEN": then} if then else {})}
    browser = subprocess.Popen(["node", "ui-tests/page-text.e2e.mjs"], cwd=browser_tools, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    try:
        for line in browser.stdout:
            lines.append(line)
            if line.startswith("E2E-SHOWN") and meanwhile is not None:
                meanwhile()
        browser.wait(60)
    finally:
        if browser.poll() is None:
            browser.kill()
            browser.wait()
    results = [line for line in lines if line.startswith("E2E-RESULT ")]
    assert results, "the browser printed no result:\n" + "".join(lines)
    return json.loads(results[-1].removeprefix("E2E-RESULT "))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    # The text is written by the page's script: shown only when the browser ran it.
    (folder / "index.html").write_text('<html><body><div id="out"></div><script src="app.js"></script></body></html>')
    (folder / "app.js").write_text('document.getElementById("out").textContent = "static page " + (2 + 3);')
    return folder


class PageWork(LightningWork):
    """Serves a small page on loopback until stopped, its address in ``url``."""

    def __init__(self) -> None:
        super().__init__(parallel=True)
        self.url = ""

    def run(self) -> None:
        import http.server

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"work page"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            self.url = f"http://127.0.0.1:{server.server_port}/"
            while True:
                time.sleep(0.1)
                self.check_stop()
        finally:
            server.shutdown()
            server.server_close()


class Mixed(LightningFlow):
    """A layout of a static frontend, a work's page and an outside URL."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder
        self.pages = PageWork()
        self.lr = 0.1

    def run(self) -> None:
        self.pages.run()

    def configure_layout(self) -> list[dict[str, object]]:
        return [{"name": "ui", "content": StaticWebFrontend(self.folder)},
                {"name": "pages", "content": self.pages},
                {"name": "docs", "content": "https://lightning.ai/docs"}]


def test_static_frontend_and_work_page_side_by_side_then_gone_with_the_app(site, jupyter_server, browser_tools):
    app = LightningApp(Mixed(str(site)), cluster="in-process")
    app.start()
    try:
        wait_until(lambda: bool(app.root.pages.url), "the work's page")
        with app.loop.lock:
            ui, pages, docs = layout_tabs(app.root)
        assert (ui["name"], ui["kind"], ui["component"], ui["proxiable"]) == ("ui", "url", "root", True)
        assert (pages["name"], pages["kind"], pages["url"]) == ("pages", "url", app.root.pages.url)
        assert (docs["kind"], docs["url"], docs["proxiable"]) == ("url", "https://lightning.ai/docs", False)
        (running,) = running_frontends(app)
        assert running.url == ui["url"] and running.error is None
        assert status_of(pages["url"]) == 200
        # Laid out again (the view does, on changes): the same server, not a new one.
        with app.loop.lock:
            assert layout_tabs(app.root)[0]["url"] == ui["url"]
        assert len(running_frontends(app)) == 1
        # Shown in a real browser through the notebook server's proxy, its script run.
        shown = page_shows(browser_tools, jupyter_server.proxied(ui["port"]), "static page 5")
        assert shown["ok"], shown
    finally:
        app.stop(60)
    assert status_of(ui["url"]) is None  # the frontend's server ended with the app


def render_params(state):
    import streamlit as st

    st.write(f"lr is {state.lr}")


class WithFrontend(LightningFlow):
    def __init__(self) -> None:
        super().__init__()
        self.lr = 0.1
        self.epochs = 3
        self.seen = 0.0
        self.train = Child()

    def run(self) -> None:
        self.seen = self.lr

    def configure_layout(self) -> Frontend:
        return StreamlitFrontend(render_fn=render_params)


class Child(LightningFlow):
    def __init__(self) -> None:
        super().__init__()
        self.progress = 0.5

    def run(self) -> None:
        pass


def test_app_state_reads_writes_and_refuses_with_reasons():
    app = LightningApp(WithFrontend(), cluster="in-process")
    app.start()
    try:
        (running,) = running_frontends(app)
        assert running.error is None and status_of(running.url) == 200
        (tab,) = layout_tabs(app.root)
        assert (tab["name"], tab["kind"], tab["url"]) == ("root", "url", running.url)  # a bare frontend's tab
        # The flow's row of the app view and the side panel links the page.
        assert describe(app, app.root)["url"] == running.url and describe(app, app.root.train)["url"] is None
        state = app_state(app)  # as the page gets it
        endpoint = frontends_of(app).state_endpoint()
        assert (state.lr, state.epochs, state.train.progress) == (0.1, 3, 0.5)
        assert state.vars == {"lr": 0.1, "epochs": 3, "seen": 0.1}
        state.lr = 0.4
        wait_until(lambda: app.root.seen == 0.4, "the flow's next pass to see the new lr")
        state.train.progress = 0.75
        assert app.root.train.progress == 0.75  # set once the call returns
        with pytest.raises(AttributeError, match="'nope' is not a state attribute of root; its attributes are: lr"):
            state.nope = 1
        with pytest.raises(AttributeError, match="root has no attribute 'missing'; it has: lr, epochs, seen, train"):
            _ = state.missing
        with pytest.raises(TypeError, match="AppState sends values as JSON"):
            state.lr = object()
        with pytest.raises(AppStateError, match="a wrong or missing token"):
            _ = AppState(endpoint.url, "not-the-token", "root").lr
        with pytest.raises(AppStateError, match="no component 'root.other'"):
            _ = AppState(endpoint.url, endpoint.token, "root.other").lr
    finally:
        app.stop(60)
    assert status_of(running.url) is None
    with pytest.raises(AppStateError, match="cannot be reached"):
        _ = AppState(endpoint.url, endpoint.token, "root").lr
    with pytest.raises(RuntimeError, match=r"app_state\(\) reaches a running app; WithFrontend is stopped"):
        app_state(app)


class Answering(LightningFlow):
    """A flow that answers a page's write in the pass right after it (``answered`` follows ``clicks``)."""

    def __init__(self) -> None:
        super().__init__()
        self.clicks = 0
        self.answered = 0
        self.label = "first"
        self.note = ""
        self.train = Child()

    def run(self) -> None:
        self.answered = self.clicks


def test_shown_version_takes_a_write_as_seen_only_from_the_version_it_started_at():
    shown = _Shown(5)
    shown.wrote(5, 6)
    assert shown.version == 6  # the page's own write: already in its snapshot
    shown.wrote(6, 8)
    assert shown.version == 8  # the next write of the same render
    shown.wrote(9, 10)
    assert shown.version == 8  # version 9 came from elsewhere: the snapshot stays behind, the page draws again
    unread = _Shown(None)
    unread.wrote(0, 1)
    assert unread.version is None


def test_a_pages_own_write_is_seen_and_the_flows_changes_after_it_are_new():
    app = LightningApp(Answering(), cluster="in-process")
    app.start()
    try:
        wait_until(lambda: app.loop is not None and app.loop.passes > 0, "the first pass")
        endpoint = frontends_of(app).state_endpoint()
        quiet = app.loop.passes
        state = app_state(app)  # as the page gets it on a rerun
        state._request_state()
        assert state._version == endpoint.version

        # A write the flow does not answer: once its pass ran, the page has seen every change there is.
        state.label = "second"
        state.train.progress = 0.75  # a child's write is the page's too
        wait_until(lambda: app.loop.passes > quiet, "the pass after the writes")
        assert state._version == endpoint.version
        assert (app.root.label, app.root.train.progress) == ("second", 0.75)

        # A write the flow answers in the very next pass: the page's own change is seen, the answer is new.
        state.clicks = 1
        written = state._version
        wait_until(lambda: app.root.answered == 1, "the flow's answer to the click")
        assert endpoint.version > written and state._version == written

        # A change the page did not make, then one it made: the snapshot is behind, the page draws again.
        fresh = app_state(app)
        fresh._request_state()
        read_at = fresh._version
        app.root.note = "from the notebook"
        assert endpoint.version > read_at
        fresh.label = "third"
        assert fresh._version == read_at and endpoint.version > read_at
    finally:
        app.stop(60)


def test_app_state_outside_a_frontend_says_what_it_needs(monkeypatch):
    monkeypatch.delenv("LIGHTNB_STATE_URL", raising=False)
    with pytest.raises(AppStateError, match=r"AppState\(\) finds the app through \$LIGHTNB_STATE_URL"):
        AppState()


def no_argument():
    return None


def test_bad_frontends_say_what_is_wrong(tmp_path):
    with pytest.raises(TypeError, match="StreamlitFrontend takes the function that draws the page, "
                                        r"render_fn\(state\), not int 42"):
        StreamlitFrontend(42)
    with pytest.raises(TypeError, match="'no_argument' must take one argument, the AppState"):
        StreamlitFrontend(no_argument)
    with pytest.raises(FileNotFoundError, match="StaticWebFrontend: the folder 'no/such/ui' does not exist"):
        StaticWebFrontend("no/such/ui")
    with pytest.raises(TypeError, match="StaticWebFrontend takes the folder to serve, not int"):
        StaticWebFrontend(3)
    with pytest.raises(FileNotFoundError, match="PanelFrontend: 'missing.py' is not a Python file"):
        PanelFrontend("missing.py")
    with pytest.raises(TypeError, match="PanelFrontend takes a function"):
        PanelFrontend(1.5)


class Broken(Frontend):
    def start_server(self, host, port, env):
        raise OSError("no room for this page")

    def stop_server(self):
        pass


class BadLayouts(LightningFlow):
    def __init__(self) -> None:
        super().__init__()
        self.child = BadChild()

    def run(self) -> None:
        pass

    def configure_layout(self):
        return [{"name": "broken", "content": Broken()}, self.child]


class BadChild(LightningFlow):
    def run(self) -> None:
        pass

    def configure_layout(self):
        return StreamlitFrontend("not a function")


def test_a_frontend_that_cannot_start_or_be_made_is_a_tab_saying_why():
    app = LightningApp(BadLayouts(), cluster="in-process")
    app.start()
    try:
        with app.loop.lock:
            broken, child = layout_tabs(app.root)
        assert broken["kind"] == "error"
        assert broken["message"] == "Broken of root did not start: OSError: no room for this page"
        (inner,) = child["tabs"]
        assert inner["kind"] == "error" and "root.child.configure_layout() failed: TypeError: StreamlitFrontend " \
                                           "takes the function that draws the page" in inner["message"]
    finally:
        app.stop(60)


def render_panel(state):
    import panel as pn

    return pn.pane.Markdown(f"panel shows lr {state.lr}")


class PanelFlow(LightningFlow):
    def __init__(self) -> None:
        super().__init__()
        self.lr = 0.25

    def run(self) -> None:
        pass

    def configure_layout(self):
        return PanelFrontend(render_panel)


def test_panel_frontend_shows_the_flows_live_state_through_the_proxy(jupyter_server, browser_tools):
    app = LightningApp(PanelFlow(), cluster="in-process")
    app.start()
    try:
        (running,) = running_frontends(app)
        assert running.error is None
        (tab,) = layout_tabs(app.root)

        def change() -> None:  # while the page is open
            with app.loop.lock:
                app.root.lr = 0.5

        shown = page_shows(browser_tools, jupyter_server.proxied(tab["port"]), "panel shows lr 0.25",
                           then="panel shows lr 0.5", meanwhile=change)
        assert shown["ok"], shown
        pid = running.frontend.pid
    finally:
        app.stop(60)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


SCRIPT = textwrap.dedent('''\
    from lightnb import LightningApp, LightningFlow
    from lightnb.frontend import StreamlitFrontend


    def render(state):
        import streamlit as st

        st.write(f"lr is {state.lr}")


    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.lr = 0.1

        def run(self):
            pass

        def configure_layout(self):
            return StreamlitFrontend(render)


    app = LightningApp(Root())
''')


def start_script(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    """``lightnb run`` of an app with a Streamlit frontend; the page's address it printed."""
    (tmp_path / "ui_app.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "lightnb", "run", "ui_app.py", "--cluster", "in-process"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while not any(line.startswith("lightnb: frontend 'root' of root: ") for line in seen):
        try:
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            process.kill()
            pytest.fail("lightnb run printed no frontend address:\n" + "".join(seen))
    line = next(line for line in seen if line.startswith("lightnb: frontend"))
    return process, line.split(": ", 2)[2].strip()


def streamlit_processes(pid: int) -> list[psutil.Process]:
    return [child for child in psutil.Process(pid).children(recursive=True)
            if "lightnb.frontend.launch" in " ".join(child.cmdline())]


def test_lightnb_run_prints_the_page_and_ctrl_c_ends_it(tmp_path, browser_tools):
    process, url = start_script(tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:") and status_of(url) == 200
        # The page draws: the app file's render function reached Streamlit's process.
        shown = page_shows(browser_tools, url, "lr is 0.1")
        assert shown["ok"], shown
        (child,) = streamlit_processes(process.pid)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=120) == 130
    finally:
        if process.poll() is None:
            process.kill()
    wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, "Streamlit to end")
    assert status_of(url) is None


def test_a_killed_app_process_leaves_no_streamlit_behind(tmp_path):
    process, url = start_script(tmp_path)
    (child,) = streamlit_processes(process.pid)
    process.kill()  # no chance to stop anything
    process.wait(30)
    wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE,
               "the orphaned Streamlit process to end on its own", timeout=30)
    assert status_of(url) is None


class Item(LightningFlow):
    def __init__(self, value: int) -> None:
        super().__init__()
        self.value = value

    def run(self) -> None:
        pass


class WithItems(LightningFlow):
    def __init__(self) -> None:
        super().__init__()
        from lightnb.structures import List

        self.items = List(Item(1), Item(2))

    def run(self) -> None:
        pass


def test_app_state_reaches_the_items_of_a_structure():
    app = LightningApp(WithItems(), cluster="in-process")
    app.start()
    try:
        state = app_state(app)
        assert len(state.items) == 2 and [item.value for item in state.items] == [1, 2]
        state.items[1].value = 20
        assert app.root.items[1].value == 20
        with pytest.raises(KeyError, match="root.items has no item 5"):
            state.items[5]
    finally:
        app.stop(60)
