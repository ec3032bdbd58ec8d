"""Render one of lightnb's widgets in a real headless Chromium (Debian's ``chromium``), from states a real
kernel sent, and report what the page shows.

The widget's ES module is loaded as anywidget loads it (``export default {render}``), with a model holding
the widget's opening state; each later update is applied as ipywidgets applies it (set the traits, then fire
``change:<trait>``). ``probe`` is the body of an async JS function run afterwards, with ``el`` (the widget's
element) and ``sent`` (what the widget sent to the kernel) in scope; what it returns comes back as JSON.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from lightnb.ui.widget import esm

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

HARNESS = """<!doctype html>
<html><head>__CONFIG__</head><body><div id="root"></div><pre id="result"></pre>
<script type="module">
const out = document.getElementById("result");
try {
  const widget = (await import("/widget.js")).default;
  const states = __STATES__;
  const state = { ...states[0] };
  const handlers = {};
  const sent = [];
  const model = {
    get: (key) => state[key],
    on: (event, handler) => { (handlers[event] ||= []).push(handler); },
    off: (event, handler) => { handlers[event] = (handlers[event] || []).filter((h) => h !== handler); },
    send: (message) => sent.push(message),
  };
  const el = document.getElementById("root");
  widget.render({ model, el });
  for (const update of states.slice(1)) {
    Object.assign(state, update);
    for (const key of Object.keys(update)) for (const handler of handlers["change:" + key] || []) handler();
  }
  const result = await (async (el, sent, state) => { __PROBE__ })(el, sent, state);
  out.textContent = JSON.stringify({ ok: true, result, sent });
} catch (error) {
  out.textContent = JSON.stringify({ ok: false, error: String(error && error.stack || error) });
}
</script></body></html>
"""


def widget_states(kernel: Any, model_id: str) -> list[dict[str, Any]]:
    """The widget's opening state, then each update's traits, as the kernel sent them."""
    states = []
    for message in kernel.since(0):
        content = message["content"]
        if content.get("comm_id") != model_id:
            continue
        opening = message["msg_type"] == "comm_open"
        if opening or (message["msg_type"] == "comm_msg" and content["data"].get("method") == "update"):
            states.append(content["data"]["state"])
    return states


def render(module: str, states: list[dict[str, Any]], probe: str, page_config: dict[str, Any] | None = None,
           timeout: float = 60) -> dict[str, Any]:
    """Render the widget module ``module`` (in lightnb/ui/static) through ``states`` in Chromium; returns
    ``{"result": what probe returned, "sent": the widget's messages}``."""
    assert CHROMIUM, "Debian's chromium package is needed for the browser tests (apt-get install chromium)"
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "widget.js").write_text(esm(module))
        config = ("" if page_config is None else
                  f'<script id="jupyter-config-data" type="application/json">{json.dumps(page_config)}</script>')
        page = (HARNESS.replace("__CONFIG__", config).replace("__STATES__", json.dumps(states))
                .replace("__PROBE__", probe))
        (root / "index.html").write_text(page)
        handler = functools.partial(_QuietHandler, directory=folder)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            dom = subprocess.run(
                [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 f"--user-data-dir={root / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
                 f"http://127.0.0.1:{server.server_address[1]}/index.html"],
                capture_output=True, text=True, timeout=timeout, check=True).stdout
        finally:
            server.shutdown()
    text = dom.split('<pre id="result">', 1)[1].split("</pre>", 1)[0]
    report = json.loads(_unescape(text))
    assert report["ok"], report.get("error")
    return report


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass
