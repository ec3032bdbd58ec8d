"""The app's state endpoint: what ``AppState`` in a frontend's process reads and writes, on 127.0.0.1.

``GET /state?component=root.x`` → ``{"version", "stage", "state"}`` (the component's state, read under the
app's lock); ``GET /version`` → ``{"version"}`` (a counter of the app's state changes: a page polls it to know
when to draw again); ``POST /set {"component", "values"}`` sets the values on the component between two flow
passes (as ``ParamsForm`` does) and answers once they are set, with ``{"before", "version"}``: the versions
just before and just after this write (nothing else changes in between), so a page can take the change it
made itself as seen without missing the flow's answer to it (a later version). Every request carries the
app's token (``X-Lightnb-Token``); anything else is refused.
"""

from __future__ import annotations

import hmac
import http.server
import json
import secrets
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from ..app import LightningApp
from ..core.component import Component, Node
from ..core.flow import find_component
from ..core.values import check_state_value
from ..utilities.state import TOKEN_HEADER

SET_TIMEOUT = 30.0  # seconds a write waits for the loop to apply it


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the HTTP status and the message the frontend shows."""

    status: int
    message: str


def check_values(component: Node, values: Any) -> Refusal | None:
    """Whether ``values`` may be set on ``component`` from a frontend: known state attributes only, each a
    value a component's state may hold."""
    if not isinstance(values, dict) or not values:
        return Refusal(400, "'values' must be a non-empty object of attribute names and values")
    if not isinstance(component, Component):
        return Refusal(400, f"{component.name} is a structure: set the attributes of its items")
    public = component._public_values()
    for name, value in values.items():
        if not isinstance(name, str) or name.startswith("_") or name not in public:
            return Refusal(400, f"{name!r} is not a state attribute of {component.name}; its attributes are: "
                                f"{', '.join(public) or 'none'}")
        try:
            check_state_value(value, f"{component.name}.{name}")
        except TypeError as error:
            return Refusal(400, str(error))
    return None


class StateServer:
    """Serves one app's state to its frontends; started with the first frontend, closed when the app ends."""

    def __init__(self, app: LightningApp) -> None:
        self.app = app
        self.token = secrets.token_urlsafe(24)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=f"lightnb-state-{app.name}",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def version(self) -> int:
        """The app's state version: the engine counts each change as it is made, under the app's lock, so a
        version read with the state (or around a write) is exactly the one that state (or write) has; counting
        the loop's notifications instead would merge a page's write with the flow's answer to it in one."""
        loop = self.app.loop
        return 0 if loop is None else loop.engine.state_version

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the requests -------------------------------------------------------------------------------------
    def read(self, name: str) -> tuple[int, dict[str, Any]]:
        loop = self.app.loop
        if loop is None:
            return 400, {"error": f"the app {self.app.name} has not started"}
        with loop.lock:
            try:
                node = find_component(self.app.root, name)
            except KeyError as error:
                return 404, {"error": str(error.args[0])}
            return 200, {"version": loop.engine.state_version, "stage": str(loop.stage), "state": node.state}

    def write(self, body: Any) -> tuple[int, dict[str, Any]]:
        loop = self.app.loop
        if not isinstance(body, dict) or not isinstance(body.get("component"), str):
            return 400, {"error": "send {\"component\": \"root....\", \"values\": {...}}"}
        if loop is None or loop.done.is_set():
            return 409, {"error": f"nothing was set: the app {self.app.name} is not running ({self.app.stage})"}
        try:
            node = find_component(self.app.root, body["component"])
        except KeyError as error:
            return 404, {"error": str(error.args[0])}
        values = body.get("values")
        refusal = check_values(node, values)
        if refusal is not None:
            return refusal.status, {"error": refusal.message}
        applied = threading.Event()
        failures: list[str] = []
        versions: list[int] = []  # before and after the write, read on the loop thread under the app's lock

        def apply() -> None:
            versions.append(loop.engine.state_version)
            try:
                for name, value in values.items():
                    setattr(node, name, value)
            except Exception as error:
                failures.append(f"{type(error).__name__}: {error}")
            finally:
                versions.append(loop.engine.state_version)
                applied.set()

        loop.call_soon(apply)  # between two flow passes, all values at once
        if not applied.wait(SET_TIMEOUT):
            return 504, {"error": f"the app did not apply the values within {SET_TIMEOUT:.0f} s (a flow pass "
                                  "still running?)"}
        if failures:
            return 400, {"error": failures[0]}
        before, after = versions
        return 200, {"ok": True, "before": before, "version": after}


def _handler(server: StateServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, default=repr).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _allowed(self) -> bool:
            token = self.headers.get(TOKEN_HEADER) or ""
            if hmac.compare_digest(token.encode(), server.token.encode()):
                return True
            self._reply(403, {"error": "a wrong or missing token: only the app's frontends may use this"})
            return False

        def do_GET(self) -> None:
            if not self._allowed():
                return
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query)
            if parts.path == "/state":
                self._reply(*server.read(query.get("component", ["root"])[0]))
            elif parts.path == "/version":
                self._reply(200, {"version": server.version})
            else:
                self._reply(404, {"error": f"no {parts.path}"})

        def do_POST(self) -> None:
            if not self._allowed():
                return
            if urllib.parse.urlsplit(self.path).path != "/set":
                self._reply(404, {"error": f"no {self.path}"})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
            except ValueError:
                self._reply(400, {"error": "the body is not JSON"})
                return
            self._reply(*server.write(body))

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
