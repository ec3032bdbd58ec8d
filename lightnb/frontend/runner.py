"""Running the frontends of an app: each on its own port of 127.0.0.1, started with the app, stopped with it.

When an app starts, every flow's ``configure_layout()`` is read once; each frontend found (returned alone or
as a tab's ``content``) is started, with the app's state endpoint in its environment, and the start waits
until they answer (so the app's view shows them at once). A frontend that appears later (a flow added while
the app runs) is started when the view first lays it out. The app's end stops them all.

A tab is known by its flow and its name: ``configure_layout()`` may build a new frontend object on every
call, and the one started first keeps serving.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..app import LightningApp, all_apps, on_app_start
from ..core.flow import LightningFlow
from ..utilities.state import ENV_COMPONENT, ENV_TOKEN, ENV_URL, AppState
from .base import Frontend, wait_until_serving
from .state_server import StateServer

HOST = "127.0.0.1"


def start_timeout() -> float:
    """Seconds an app's start waits for its frontends to answer (``LIGHTNB_FRONTEND_TIMEOUT``, default 120)."""
    return float(os.environ.get("LIGHTNB_FRONTEND_TIMEOUT") or 120)


@dataclass
class RunningFrontend:
    """A frontend the app started: the tab it is (``flow``, ``name``), where it serves, why it failed."""

    flow: str
    name: str
    frontend: Frontend
    url: str
    error: str | None = None


def default_tab_name(flow: LightningFlow) -> str:
    """The tab name of a frontend returned without one: the flow's own name (``root``, ``ui``)."""
    return flow.name.rsplit(".", 1)[-1]


def frontend_entries(flow: LightningFlow, layout: Any) -> list[tuple[str, Frontend]]:
    """The ``(tab name, frontend)`` pairs of what ``flow.configure_layout()`` returned (names as the app view
    gives them: a dict entry's ``name``, else ``tab N``; a bare frontend, the flow's name)."""
    if layout is None:
        return []
    entries = layout if isinstance(layout, (list, tuple)) else [layout]
    found = []
    for index, entry in enumerate(entries):
        if isinstance(entry, dict):
            content = entry.get("content")
            if isinstance(content, Frontend):
                found.append((str(entry.get("name") or f"tab {index + 1}"), content))
        elif isinstance(entry, Frontend):
            found.append((default_tab_name(flow), entry))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class AppFrontends:
    """The frontends of one app and the state endpoint they share."""

    def __init__(self, app: LightningApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], RunningFrontend] = {}
        self._state: StateServer | None = None
        self._closed = False
        loop = app.loop
        if loop is not None:
            loop.before_done.append(self.close)

    @property
    def running(self) -> list[RunningFrontend]:
        with self._lock:
            return list(self._running.values())

    def get(self, flow: LightningFlow, name: str) -> RunningFrontend | None:
        with self._lock:
            return self._running.get((flow.name, name))

    def ensure(self, flow: LightningFlow, name: str, frontend: Frontend) -> RunningFrontend:
        """The tab's running frontend, started now if it is not yet."""
        key = (flow.name, name)
        with self._lock:
            known = self._running.get(key)
            if known is not None:
                return known
            port = _free_port()
            running = RunningFrontend(flow.name, name, frontend, f"http://{HOST}:{port}/")
            if self._closed:
                running.error = f"the app {self.app.name} has ended"
                return running
            state = self._endpoint()
            env = {ENV_URL: state.url, ENV_TOKEN: state.token, ENV_COMPONENT: flow.name}
            frontend.flow = flow
            try:
                frontend.start_server(HOST, port, env)
            except Exception as error:
                running.error = f"{type(frontend).__name__} of {flow.name} did not start: {type(error).__name__}: " \
                                f"{error}"
            self._running[key] = running
            return running

    def _endpoint(self) -> StateServer:
        """(lock held) The app's state endpoint, started with its first user."""
        if self._state is None:
            self._state = StateServer(self.app)
        return self._state

    def state_endpoint(self) -> StateServer:
        """The app's state endpoint (started now if no frontend started it)."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the app {self.app.name} has ended: its state endpoint is closed")
            return self._endpoint()

    def wait_ready(self, started: Iterable[RunningFrontend], timeout: float) -> None:
        """Wait until each started frontend answers; one that fails or never answers gets its ``error`` and
        is stopped."""
        deadline = time.monotonic() + timeout
        for running in started:
            if running.error is not None:
                continue
            base = running.url.rstrip("/")
            problem = wait_until_serving(running.frontend, base + running.frontend.ready_path(), deadline)
            if problem is not None:
                running.error = problem
                _stop(running)

    def close(self) -> None:
        """Stop every frontend and the state endpoint (the app ended)."""
        with self._lock:
            self._closed = True
            running = list(self._running.values())
            state, self._state = self._state, None
        for entry in running:
            _stop(entry)
        if state is not None:
            state.close()


def _stop(running: RunningFrontend) -> None:
    try:
        running.frontend.stop_server()
    except Exception:
        traceback.print_exc()


_by_app: weakref.WeakKeyDictionary[LightningApp, AppFrontends] = weakref.WeakKeyDictionary()
_by_app_lock = threading.Lock()


def frontends_of(app: LightningApp) -> AppFrontends:
    with _by_app_lock:
        found = _by_app.get(app)
        if found is None:
            found = _by_app[app] = AppFrontends(app)
        return found


def running_frontends(app: LightningApp) -> list[RunningFrontend]:
    """The frontends ``app`` started (for a front to print or show)."""
    with _by_app_lock:
        found = _by_app.get(app)
    return [] if found is None else found.running


def app_state(app: LightningApp, component: str = "root") -> AppState:
    """The :class:`AppState` of ``component`` of the running ``app``, as a frontend's page receives it: a
    cell or a test drives the app the way its page does (``state.lr = 0.1`` reaches the flow between passes).
    """
    if app.loop is None or app.loop.done.is_set():
        raise RuntimeError(f"app_state() reaches a running app; {app.name} is {app.stage}")
    endpoint = frontends_of(app).state_endpoint()
    return AppState(endpoint.url, endpoint.token, component)


def frontend_url(flow: LightningFlow) -> str | None:
    """The address of the first frontend ``flow`` serves while its app runs (the side panel links it)."""
    with _by_app_lock:
        entries = list(_by_app.items())
    for app, frontends in entries:
        if app.root is flow.root and not frontends._closed:
            for running in frontends.running:
                if running.flow == flow.name and running.error is None:
                    return running.url
    return None


def _app_of(flow: LightningFlow) -> LightningApp | None:
    root = flow.root
    for app in reversed(all_apps()):
        if app.root is root and app.loop is not None:
            return app
    return None


def frontend_for_tab(flow: LightningFlow, name: str, frontend: Frontend) -> RunningFrontend | None:
    """The running frontend of a tab the app view lays out (started now if the app did not start it, without
    waiting for it); None when the flow's app has not started."""
    app = _app_of(flow)
    if app is None:
        return None
    return frontends_of(app).ensure(flow, name, frontend)


def _start_app_frontends(app: LightningApp) -> None:
    """(on_app_start) Start the frontends of every flow of ``app`` and wait until they answer."""
    loop = app.loop
    if loop is None:
        return
    found: list[tuple[LightningFlow, str, Frontend]] = []
    with loop.lock:
        for node in app.root._walk():
            if not isinstance(node, LightningFlow):
                continue
            try:
                layout = node.configure_layout()
            except Exception:
                continue  # the app view shows the failure as a tab
            found += [(node, name, frontend) for name, frontend in frontend_entries(node, layout)]
    if not found:
        return
    frontends = frontends_of(app)
    started = [frontends.ensure(flow, name, frontend) for flow, name, frontend in found]
    frontends.wait_ready(started, start_timeout())


on_app_start(_start_app_frontends)
