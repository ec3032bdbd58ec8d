"""A flow's Streamlit frontend in a real kernel app, seen in a real headless Chromium through the notebook
server's proxy (labextension/ui-tests/frontend.e2e.mjs): the page shows the flow's live state, its button and
number input set the flow's attributes and the flow's next pass sees them; stopping the app ends Streamlit."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
from kernel_session import KernelSession

from lightnb.ui.urls import frame_url

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

APP = textwrap.dedent('''\
    import json
    from lightnb import LightningApp, LightningFlow
    from lightnb.frontend import StreamlitFrontend, running_frontends
    from lightnb.ui import AppView


    def render(state):
        import streamlit as st

        st.write(f"lr = {state.lr}")
        st.write(f"flow saw: {state.seen}")
        st.write(f"note: {state.note}")
        if st.button("double lr"):
            state.lr = round(state.lr * 2, 6)
        state.epochs = int(st.number_input("epochs", min_value=1, max_value=100, value=int(state.epochs)))


    class Params(LightningFlow):
        def __init__(self):
            super().__init__()
            self.lr = 0.01
            self.epochs = 2
            self.seen = ""
            self.note = "nothing yet"

        def run(self):
            self.seen = f"lr={self.lr} epochs={self.epochs}"

        def configure_layout(self):
            return [{"name": "params", "content": StreamlitFrontend(render_fn=render)}]


    app = LightningApp(Params(), cluster="in-process")
    app.start()
    (frontend,) = running_frontends(app)
    print("FRONTEND", json.dumps({"url": frontend.url, "error": frontend.error, "pid": frontend.frontend.pid}))
    print("TABS", json.dumps(AppView(app).tabs))
''')

NOTE = "set in the kernel"


def _json_line(text: str, prefix: str) -> dict:
    return json.loads(next(line for line in text.splitlines() if line.startswith(prefix)).removeprefix(prefix))


@pytest.mark.timeout(400)
def test_streamlit_page_shows_the_live_state_and_sets_it_through_the_proxy(jupyter_server, browser_tools):
    with KernelSession() as kernel:
        run = kernel.execute(APP, timeout=180)
        assert run.ok, run.text
        frontend = _json_line(run.stdout, "FRONTEND ")
        assert frontend["error"] is None
        tabs = _json_line(run.stdout, "TABS ")
        # The AppView shows the page as a tab, through the proxy (the browser builds /proxy/PORT/).
        (tab,) = tabs
        assert tab["name"] == "params" and tab["kind"] == "url" and tab["proxiable"]
        assert tab["url"] == frontend["url"] and tab["url"].startswith("http://127.0.0.1:")
        port = tab["port"]
        # The address the AppView's iframe is given under a Jupyter server is the one the browser opens below.
        assert frame_url(tab, "/", {"enabled": True}) == f"/proxy/{port}/"

        env = {**os.environ, "PAGE_URL": jupyter_server.proxied(port), "CHROMIUM": CHROMIUM, "NOTE": NOTE,
               "ARTIFACTS": str(REPO / "test-artifacts")}
        browser = subprocess.Popen(["node", "ui-tests/frontend.e2e.mjs"], cwd=browser_tools, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stderr: list[str] = []
        threading.Thread(target=lambda: stderr.append(browser.stderr.read()), daemon=True).start()
        lines = []
        try:
            for line in browser.stdout:
                lines.append(line)
                if "a value set in the kernel" in line:  # the page is showing: change the flow from a cell
                    assert kernel.execute(f"app.root.note = {NOTE!r}").ok
            browser.wait(60)
        finally:
            if browser.poll() is None:
                browser.kill()
                browser.wait()
        results = [line for line in lines if line.startswith("E2E-RESULT ")]
        assert results, f"the browser test printed no result:\n{''.join(lines)}\n{''.join(stderr)}"
        result = json.loads(results[-1].removeprefix("E2E-RESULT "))
        assert result["ok"], (f"{result['error']}\nsteps:\n" + "\n".join(result["steps"]) +
                              f"\nconsole errors: {result['consoleErrors']}\nJupyter log:\n{jupyter_server.log_tail()}")
        # What the page set is what the flow has and saw.
        assert kernel.value("(app.root.lr, app.root.epochs, app.root.seen)") == (0.02, 7, "lr=0.02 epochs=7")

        # Stopping the app ends the Streamlit process and the state endpoint.
        assert kernel.execute("app.stop(60); print(app.stage)").stdout.strip() == "stopped"
        deadline = time.monotonic() + 15
        while psutil.pid_exists(frontend["pid"]) and psutil.Process(frontend["pid"]).status() != "zombie":
            assert time.monotonic() < deadline, "the Streamlit process outlived the app"
            time.sleep(0.1)
        assert kernel.value("running_frontends(app)[0].frontend.pid") is None
