"""configure_layout() as tabs: a page a work serves, shown as an iframe through jupyter-server-proxy.

A real HTTP server runs inside a work on a Dask worker process; the view's state carries the pieces of its
address; the browser-side code (run in Node with the page's config) and the Python rule build the proxied
address; a real Jupyter server with jupyter-server-proxy serves the work's page at that address.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest
from kernel_session import KernelSession, wait_appview
from notebook_apps import PRELUDE

from lightnb.core.flow import LightningFlow
from lightnb.core.work import LightningWork
from lightnb.ui.layout import layout_tabs
from lightnb.ui.urls import frame_url
from lightnb.ui.widget import esm

PAGE_APP = PRELUDE + textwrap.dedent('''
    import http.server, threading

    class Page(LightningWork):
        """Serves a small page on a free loopback port; `url` is set once it answers."""

        def __init__(self):
            super().__init__(parallel=True)
            self.url = None

        def run(self):
            class Hello(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = f"hello from a work, path {self.path}".encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *args):
                    pass

            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.url = f"http://127.0.0.1:{server.server_address[1]}/"
            try:
                while True:
                    time.sleep(0.2)
                    self.check_stop()
            finally:
                server.shutdown()

    class Details(LightningFlow):
        def __init__(self):
            super().__init__()
            self.note = "details"

        def run(self):
            pass

    class Site(LightningFlow):
        def __init__(self):
            super().__init__()
            self.page = Page()
            self.details = Details()

        def run(self):
            self.page.run()
            self.details.run()

        def configure_layout(self):
            return [{"name": "page", "content": self.page}, {"name": "more", "content": self.details},
                    {"name": "docs", "content": "https://example.org/docs"}]
''')


@pytest.fixture(scope="module")
def kernel():
    with KernelSession(env={"LIGHTNB_PROXY": ""}) as session:
        setup = session.execute(PAGE_APP)
        assert setup.ok, setup.text
        yield session
        session.execute("site.stop()\ncluster.close()")


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory):
    """A real Jupyter server (with jupyter-server-proxy, as installed) on loopback, under a base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "lightnb-test-token"
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", "--ServerApp.base_url=/lab-base/",
         f"--ServerApp.root_dir={tmp_path_factory.mktemp('server')}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/lab-base/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the Jupyter server did not start") from None
            time.sleep(0.3)
    yield base, "/lab-base/", token
    process.terminate()
    process.wait(20)


_SITE: dict[str, str] = {}


def _page_tab(kernel):
    if "model_id" not in _SITE:
        start = kernel.mark()
        run = kernel.execute("site = LightningApp(Site(), cluster=cluster)\nsite.start()\nsite")
        assert run.ok, run.text
        (_SITE["model_id"],) = kernel.widget_ids("AppView", start)
    model_id = _SITE["model_id"]

    def has_page(header, components):
        return bool(components.get("root.page", {}).get("url"))

    wait_appview(kernel, model_id, has_page, 90, "the page's url")
    for _ in range(50):  # the tabs follow the url in the same flush or the next
        state = kernel.widget_state(model_id)
        tabs = {tab["name"]: tab for tab in state["tabs"]}
        if tabs["page"]["url"]:
            return state, tabs
        time.sleep(0.1)
    raise AssertionError(f"the page tab never got its url: {state['tabs']}")


TABS_PROBE = """
const frames = {};
for (const tab of [...el.querySelectorAll(".lnb-tab")]) {
  tab.click();
  const active = [...el.querySelectorAll(".lnb-tab")].find((t) => t.classList.contains("lnb-active"));
  const frame = el.querySelector(".lnb-body iframe");
  const rows = [...el.querySelectorAll(".lnb-body .lnb-row")].map((row) => row.dataset.name);
  frames[active.textContent] = frame ? frame.getAttribute("src") : rows;
}
return frames;
"""


def test_the_browser_shows_the_page_tab_as_a_proxied_iframe(kernel):
    from browser import render, widget_states

    state, tabs = _page_tab(kernel)
    states = widget_states(kernel, _SITE["model_id"])
    port = tabs["page"]["port"]
    under_lab = render("appview.js", states, TABS_PROBE, page_config={"baseUrl": "/lab-base/"})["result"]
    assert under_lab["page"] == f"/lab-base/proxy/{port}/"
    assert under_lab["docs"] == "https://example.org/docs"  # another machine's page: its own address
    assert under_lab["more"] == ["root.details"]  # a flow's tab is its own view: its part of the tree
    assert under_lab["Components"] == ["root", "root.page", "root.details"]
    no_server = render("appview.js", states, TABS_PROBE)["result"]  # VS Code: no Jupyter page config
    assert no_server["page"] == f"http://127.0.0.1:{port}/"


def test_a_served_page_is_an_iframe_tab_through_the_proxy(kernel, jupyter_server):
    state, tabs = _page_tab(kernel)
    page = tabs["page"]
    assert page["kind"] == "url" and page["component"] == "root.page"
    assert page["proxiable"] is True and page["path"] == ""
    assert page["url"] == f"http://127.0.0.1:{page['port']}/"
    assert state["proxy"] == {"enabled": True, "prefix": None}
    assert tabs["more"] == {"name": "more", "kind": "flow", "component": "root.details", "tabs": []}
    assert tabs["docs"]["url"] == "https://example.org/docs" and tabs["docs"]["proxiable"] is False

    # The page answers directly, on the worker's loopback port ...
    direct = urllib.request.urlopen(page["url"], timeout=10).read().decode()
    assert direct == "hello from a work, path /"
    # ... and through the Jupyter server's proxy at the address the view builds, trailing slash included.
    server, base_url, token = jupyter_server
    proxied = frame_url(page, base_url, state["proxy"])
    assert proxied == f"/lab-base/proxy/{page['port']}/"
    through = urllib.request.urlopen(f"{server}{proxied}?token={token}", timeout=10).read().decode()
    assert through.startswith("hello from a work, path /")


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js runs the view's browser code")
def test_the_browser_code_builds_the_same_address(tmp_path):
    tab = {"url": "http://127.0.0.1:8123/app?x=1", "port": 8123, "path": "app?x=1", "proxiable": True}
    remote = {**tab, "url": "http://10.1.2.3:8123/", "proxiable": False, "path": ""}
    cases = [
        ({"baseUrl": "/lab-base/"}, {"enabled": True, "prefix": None}, tab),  # JupyterLab under a base URL
        (None, {"enabled": True, "prefix": "/user/ada/"}, tab),  # JupyterHub: the kernel knows the prefix
        (None, {"enabled": True, "prefix": None}, tab),  # VS Code: no Jupyter page, direct URL
        ({"baseUrl": "/"}, {"enabled": False, "prefix": None}, tab),  # no jupyter-server-proxy
        ({"baseUrl": "/"}, {"enabled": True, "prefix": None}, remote),  # a page on another machine
    ]
    module = tmp_path / "appview.mjs"
    module.write_text(esm("appview.js"))  # what the browser loads
    script = textwrap.dedent(f"""
        const cases = {json.dumps(cases)};
        const results = [];
        for (const [config, proxy, tab] of cases) {{
          globalThis.document = {{ getElementById: () => config ? {{ textContent: JSON.stringify(config) }} : null }};
          const {{ frameUrl }} = await import({json.dumps(module.as_uri())});
          results.push(frameUrl(tab, proxy));
        }}
        console.log(JSON.stringify(results));
    """)
    output = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True,
                            timeout=60, check=True).stdout
    browser = json.loads(output)
    python = [frame_url(tab, (config or {}).get("baseUrl"), proxy) for config, proxy, tab in cases]
    assert browser == python == ["/lab-base/proxy/8123/app?x=1", "/user/ada/proxy/8123/app?x=1",
                                 "http://127.0.0.1:8123/app?x=1", "http://127.0.0.1:8123/app?x=1",
                                 "http://10.1.2.3:8123/"]


class _Served(LightningWork):
    def __init__(self, url=None):
        super().__init__()
        self.url = url

    def run(self):
        pass


class _Broken(LightningFlow):
    def __init__(self):
        super().__init__()
        self.served = _Served("http://localhost:9000/x")
        self.waiting = _Served()

    def run(self):
        pass

    def configure_layout(self):
        return [self.served, {"name": "later", "content": self.waiting}, {"name": "bad", "content": 42}]


class _Raising(LightningFlow):
    def run(self):
        pass

    def configure_layout(self):
        raise RuntimeError("no layout today")


def test_layout_entries_become_tabs_and_bad_ones_say_why():
    served, later, bad = layout_tabs(_Broken())
    assert served == {"name": "served", "kind": "url", "component": "root.served", "url": "http://localhost:9000/x",
                      "port": 9000, "path": "x", "proxiable": True}
    assert later["url"] is None and later["kind"] == "url"  # shown as "waiting for the page"
    assert bad["kind"] == "error"
    assert "must be a flow, a work, a frontend (lightnb.frontend) or an http(s) URL, not int 42" in bad["message"]
    (error,) = layout_tabs(_Raising())
    assert error["kind"] == "error" and "root.configure_layout() failed: RuntimeError: no layout today" in \
        error["message"]


def test_default_layout_shows_child_flows_and_served_works():
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.served = _Served("http://127.0.0.1:7000/")
            self.quiet = _Served()
            self.inner = _Raising()

        def run(self):
            pass

    names = [(tab["name"], tab["kind"]) for tab in layout_tabs(Root())]
    assert names == [("served", "url"), ("inner", "flow")]
    root = Root()
    root.served.display_name = "Model page"
    assert [tab["name"] for tab in layout_tabs(root)] == ["Model page", "inner"]  # the name the app gave it


def test_the_kernel_side_proxy_settings(monkeypatch):
    from lightnb.ui.urls import proxy_settings

    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada")
    monkeypatch.delenv("LIGHTNB_PROXY", raising=False)
    assert proxy_settings() == {"enabled": True, "prefix": "/user/ada/"}
    monkeypatch.setenv("LIGHTNB_PROXY", "0")
    assert proxy_settings()["enabled"] is False
    monkeypatch.setenv("LIGHTNB_PROXY", "on")
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX")
    assert proxy_settings() == {"enabled": True, "prefix": None}
