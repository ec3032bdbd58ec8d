"""Serving from a work: a free port on loopback, ``url`` set only once the server answers, stopped with
the work, and reachable both directly and through the notebook's proxy (jupyter-server-proxy).

:class:`ServerWork` is the base of every ready-made server. A subclass starts its server in
:meth:`ServerWork.start_server` and returns a handle; ``run()`` then serves until the work is stopped,
calling :meth:`ServerWork.on_state_change` when the flow sets one of the work's attributes (a new
checkpoint to load, say), without restarting the server.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

from ..core.compute import CloudCompute
from ..core.values import describe_type
from ..core.work import LightningWork, free_port, server_url  # noqa: F401  (free_port: re-exported)
from ._work import set_quietly, stop_signal

LOOPBACK = "127.0.0.1"
# How long a server has to answer before its work fails.
START_TIMEOUT_SECONDS = 120.0


class ServerFailed(RuntimeError):
    """A work's server did not start, or stopped on its own."""


class Server(Protocol):
    """What :meth:`ServerWork.start_server` returns."""

    def alive(self) -> bool: ...

    def stop(self) -> None:
        """End the server and everything it started (called from the work's thread or another one)."""

    def failure(self) -> str:
        """Why the server is not alive (for the work's failure message)."""


def server_socket(host: str) -> socket.socket:
    """A TCP socket for a server to listen on.

    With ``TCP_NODELAY``, which the connections it accepts inherit: uvicorn (on uvloop) does not set it on
    connections of a socket it is handed, and without it every small answer waits for the client's delayed
    ACK (~40 ms on Linux) — a model server then answers some 20 requests a second instead of hundreds.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def bind_free_port(host: str = LOOPBACK) -> socket.socket:
    """A listening-ready socket bound to a free port of ``host`` (hand it to the server: no race)."""
    sock = server_socket(host)
    sock.bind((host, 0))
    return sock


def http_url(host: str, port: int) -> str:
    """The address to reach a server bound to ``host``: a wildcard host is reached on loopback (the rule
    of any work's ``url``, with a trailing slash: pages with relative asset URLs need it)."""
    return server_url(host, port) + "/"


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether an HTTP server answers at ``url`` (any status below 500)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (OSError, ValueError):
        return False


def wait_until_answers(url: str, server: Server, what: str, stopping: threading.Event,
                       timeout: float = START_TIMEOUT_SECONDS) -> bool:
    """Wait until ``url`` answers; ``False`` if the work was stopped meanwhile, :class:`ServerFailed` if the
    server died or never answered."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not stopping.is_set():
        if answers(url):
            return True
        if not server.alive():
            raise ServerFailed(f"{what} stopped before it answered at {url}: {server.failure()}")
        if time.monotonic() > deadline:
            raise ServerFailed(f"{what} did not answer at {url} within {timeout:.0f} s: {server.failure()}")
        stopping.wait(delay)
        delay = min(delay * 1.5, 0.5)
    return False


class ServerWork(LightningWork):
    """A work that serves HTTP until it is stopped: picks a free port (unless given one), sets ``url``
    once the server answers, and ends the server with the work. Runs in parallel by default.

    State: ``host``, ``port`` (the port it serves on, once chosen) and ``url`` (``None`` until the server
    answers, and again after it stopped).
    """

    def __init__(self, host: str = LOOPBACK, port: int | None = None, *, parallel: bool = True,
                 cache_calls: bool = True, raise_exception: bool = True,
                 cloud_compute: CloudCompute | None = None) -> None:
        super().__init__(parallel=parallel, cache_calls=cache_calls, raise_exception=raise_exception,
                         cloud_compute=cloud_compute)
        if not isinstance(host, str) or not host:
            raise TypeError(f"{type(self).__name__} host must be an address such as '127.0.0.1', not {host!r}")
        if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
            raise ValueError(f"{type(self).__name__} port must be a port number (1-65535) or None for a free "
                             f"one, not {port!r}")
        self.host = host
        self.port = port
        self.url: str | None = None
        self._requested_port = port

    # -- what subclasses provide ----------------------------------------------------------------------------
    def start_server(self, host: str, port: int | None) -> tuple[Server, int]:
        """Start serving on ``host`` and ``port`` (``None``: any free port); return the server and its port."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Called on the work's thread before the server starts (load a model, say)."""

    def on_state_change(self) -> None:
        """Called on the work's thread, while it serves, after the flow set some of its attributes."""

    def _public_url(self, host: str, port: int) -> str:
        """What ``url`` is set to once the server answers (with a trailing slash: pages with relative asset
        URLs need it)."""
        return http_url(host, port)

    def _label(self) -> str:
        return f"{self.name} ({describe_type(self)})"

    # -- the serving loop -----------------------------------------------------------------------------------
    def run(self) -> None:
        wake = threading.Event()
        stopping, unregister = stop_signal(self, wake.set)
        object.__setattr__(self, "_wake", wake)
        server: Server | None = None
        try:
            self.prepare()
            server, port = self.start_server(self.host, self._requested_port)
            self.port = port
            url = self._public_url(self.host, port)
            if not wait_until_answers(url, server, self._label(), stopping):
                return
            self.url = url
            self._serve(server, stopping, wake)
        finally:
            object.__setattr__(self, "_wake", None)
            unregister()
            if server is not None:
                server.stop()
            if self.url is not None:
                set_quietly(self, url=None)

    def tick_seconds(self) -> float:
        """How often :meth:`on_tick` runs while serving (it also notices a server that died)."""
        return 5.0

    def on_tick(self) -> None:
        """Called on the work's thread every :meth:`tick_seconds` while it serves."""

    def _serve(self, server: Server, stopping: threading.Event, wake: threading.Event) -> None:
        next_tick = time.monotonic() + self.tick_seconds()
        while not stopping.is_set():
            # Woken by the flow setting an attribute, by a stop, or for the next tick.
            woken = wake.wait(max(0.0, next_tick - time.monotonic()))
            wake.clear()
            if stopping.is_set():
                return
            if not server.alive():
                raise ServerFailed(f"{self._label()} stopped serving on its own: {server.failure()}")
            if woken:
                self.on_state_change()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.tick_seconds()
                self.on_tick()

    def _apply_remote(self, attribute: str, value: Any) -> None:
        super()._apply_remote(attribute, value)
        wake = self.__dict__.get("_wake")
        if wake is not None:
            wake.set()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_wake", None)
        return state


class ThreadServer:
    """An ASGI app served by uvicorn on a thread of the work's process, on an already bound socket."""

    def __init__(self, app: Any, sock: socket.socket, name: str) -> None:
        import uvicorn

        config = uvicorn.Config(behind_notebook_proxy(app), log_level="warning", access_log=False,
                                lifespan="on", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._sock = sock
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name=f"lightnb-serve-{name}", daemon=True)

    def start(self) -> ThreadServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as error:  # reported through failure()
            self._error = error
        finally:
            self._sock.close()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        if threading.current_thread() is not self._thread:
            self._thread.join(10)

    def failure(self) -> str:
        if self._error is not None:
            return f"{type(self._error).__name__}: {self._error}"
        return "the server thread ended" if not self.alive() else "it is still starting"


def serve_asgi(app: Any, host: str, port: int | None, name: str) -> tuple[ThreadServer, int]:
    """Serve ``app`` on a thread; ``port=None`` binds a free port first (no race with other servers)."""
    if port is None:
        sock = bind_free_port(host)
    else:
        sock = server_socket(host)
        try:
            sock.bind((host, port))
        except OSError as error:
            sock.close()
            raise ServerFailed(f"{name} cannot serve on {host}:{port}: {error.strerror} (give another port, "
                               "or port=None for a free one)") from None
    return ThreadServer(app, sock, name).start(), sock.getsockname()[1]


AsgiApp = Callable[[dict[str, Any], Any, Any], Any]


def behind_notebook_proxy(app: AsgiApp) -> AsgiApp:
    """Let an ASGI app generate correct links when reached through jupyter-server-proxy.

    The proxy (``{base_url}proxy/{port}/...``) strips its prefix and says what it was in
    ``X-Forwarded-Prefix``. Seen from the app, such a request is served as if the app were mounted under
    that prefix (``root_path``), so absolute URLs it builds (Gradio's ``root``, FastAPI's docs) point back
    through the proxy, while direct requests stay as they are.
    """

    async def proxied(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] in ("http", "websocket") and not scope.get("root_path"):
            prefix = _header(scope, b"x-forwarded-prefix").rstrip("/")
            if prefix.startswith("/") and not scope["path"].startswith(prefix + "/"):
                raw = scope.get("raw_path") or scope["path"].encode()
                scope = {**scope, "root_path": prefix, "path": prefix + scope["path"],
                         "raw_path": prefix.encode() + raw}
        return await app(scope, receive, send)

    return proxied


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""
