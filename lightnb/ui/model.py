"""The front ends' view of an app: plain JSON describing its components, and the patches between two looks.

One shape serves the ``AppView`` widget and the ``lightnb`` comm of the side panel (docs/comm-protocol.md):
an *App* header and a dict of *Component* objects by dotted name. :class:`AppTracker` remembers what one
front end was last sent of one app and turns the app's change notifications into patches holding only
what changed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from numbers import Real
from typing import Any

from ..core.component import Node
from ..core.events import Changes
from ..core.flow import LightningFlow
from ..core.values import plain
from ..core.work import LightningWork
from ..frontend.runner import frontend_url
from .urls import url_pieces

LOG_LINES = 20  # last lines of each component carried in the model
LOG_LINE_CHARS = 400  # longer lines are cut: a front end shows a line, not a dump
LOCK_TIMEOUT = 1.0  # a flow pass holding the lock longer than this delays the view to the next tick

Component = dict[str, Any]
Patch = dict[str, Component | None]


def app_header(app: Any) -> dict[str, Any]:
    """``{"id", "name", "stage", "end_message", "resumed"}`` of an app (``resumed``: what resuming it from its
    record did, in words; ``None`` for an app that did not resume)."""
    resumed = getattr(app, "resumed", None)
    return {"id": app.app_id, "name": app.name, "stage": str(app.stage), "end_message": app.end_message,
            "resumed": resumed.describe() if resumed is not None else None}


def components_of(root: Node) -> Iterator[Node]:
    """Every flow and work under ``root`` (structures are looked through), in tree order."""
    for node in root._walk():
        if isinstance(node, (LightningFlow, LightningWork)):
            yield node


def owner_name(node: Node) -> str | None:
    """The flow a component hangs from (through a ``structures.List``/``Dict`` if any)."""
    for ancestor in node._ancestors():
        if isinstance(ancestor, LightningFlow):
            return ancestor.name
    return None


def progress_of(node: Node) -> float | None:
    value = node.__dict__.get("progress")
    if isinstance(value, Real) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    return None


def url_of(node: Node) -> str | None:
    value = node.__dict__.get("url")
    return value if isinstance(value, str) and value else None


def log_tail(app: Any, name: str, n: int = LOG_LINES) -> list[str]:
    loop = app.loop
    buffer = None if loop is None else loop.logs.get(name)
    if buffer is None:
        return []
    return [line if len(line) <= LOG_LINE_CHARS else line[:LOG_LINE_CHARS] + "…" for line in buffer.lines(n)]


class _LogCache:
    """The last lines of each component, read again only when its log changed (reading copies the log)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._cache: dict[str, tuple[int, list[str]]] = {}

    def __call__(self, app: Any, name: str) -> list[str]:
        loop = self.app.loop
        buffer = None if loop is None else loop.logs.get(name)
        if buffer is None:
            return []
        cached = self._cache.get(name)
        if cached is None or cached[0] != buffer.version:
            cached = self._cache[name] = (buffer.version, log_tail(self.app, name))
        return cached[1]


MAX_METRICS = 12  # series of one component's chart


def metrics_of(node: Node) -> dict[str, float] | None:
    """The component's ``metrics`` attribute — a dict of names to numbers, set again and again as they
    change (e.g. a trainer's loss) — with its finite numbers only (at most ``MAX_METRICS``); else None."""
    value = getattr(node, "__dict__", {}).get("metrics")
    if not isinstance(value, dict):
        return None
    numbers = {str(key): float(number) for key, number in value.items()
               if isinstance(number, Real) and not isinstance(number, bool) and math.isfinite(float(number))}
    return dict(list(numbers.items())[:MAX_METRICS]) or None


def view_of(node: Node) -> dict[str, Any] | None:
    """``{"kind", "state"}``: the view the component's class asks for (``_view``, a
    ``lightnb.core.view.ComponentView``) with the state attributes it is drawn from; else None."""
    view = node._view if isinstance(node, (LightningFlow, LightningWork)) else None
    if view is None:
        return None
    values = node.__dict__
    return {"kind": view.kind, "state": {field: plain(values.get(field)) for field in view.fields}}


def describe(app: Any, node: Node, logs: Any = log_tail) -> Component:
    """The Component object of ``node`` (see docs/comm-protocol.md); ``logs(app, name)`` gives its log
    lines."""
    is_work = isinstance(node, LightningWork)
    status = node.status if is_work else None  # type: ignore[attr-defined]
    url = url_of(node) or (frontend_url(node) if isinstance(node, LightningFlow) else None)
    shown = node.__dict__.get("_display_name")  # flow.display_name / work.display_name, when given
    return {
        **({"display_name": shown} if shown else {}),
        "name": node.name,
        "parent": owner_name(node),
        "kind": "work" if is_work else "flow",
        "class": type(node).__name__,
        "stage": status.stage.value if status else None,
        "message": status.message if status else None,
        "progress": progress_of(node),
        "url": url,
        "port": url_pieces(url)["port"] if url else None,
        "logs": logs(app, node.name),
        "metrics": metrics_of(node),
        "view": view_of(node),
    }


@contextmanager
def app_locked(app: Any) -> Iterator[bool]:
    """Hold the app's loop lock (a flow pass never runs meanwhile); yields False if it was not free in
    time, so the caller tries again at its next tick instead of stalling."""
    loop = app.loop
    if loop is None:
        yield True
        return
    if not loop.lock.acquire(timeout=LOCK_TIMEOUT):
        yield False
        return
    try:
        yield True
    finally:
        loop.lock.release()


def read_all(app: Any, logs: Any = log_tail) -> dict[str, Component]:
    """Every component of the app (call with the app locked)."""
    return {node.name: describe(app, node, logs) for node in components_of(app.root)}


def diff(old: dict[str, Component], new: dict[str, Component]) -> Patch:
    """What changed from ``old`` to ``new``: changed fields of kept components, whole new ones, ``None``
    for removed ones."""
    patch: Patch = {}
    for name, component in new.items():
        before = old.get(name)
        if before is None:
            patch[name] = component
            continue
        changed = {key: value for key, value in component.items() if before.get(key) != value}
        if changed:
            patch[name] = changed
    for name in old.keys() - new.keys():
        patch[name] = None
    return patch


def apply_patch(components: dict[str, Component], patch: Patch) -> dict[str, Component]:
    """``components`` with ``patch`` applied (what a front end does; used by tests and the text views)."""
    result = {name: dict(component) for name, component in components.items()}
    for name, change in patch.items():
        if change is None:
            result.pop(name, None)
        elif name in result:
            result[name].update(change)
        else:
            result[name] = dict(change)
    return result


class AppTracker:
    """What one front end was last sent of one app.

    ``on_changes`` (on the app's loop thread) records which components changed; ``patch()`` (on the UI
    pump) reads only those — or the whole tree when a flow changed, since that may have added or removed
    children — and returns what differs from what was sent.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sent: dict[str, Component] = {}
        self.sent_header: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._names: set[str] = set()
        self._everything = True
        self._unsubscribe: Any = None
        self._nodes: dict[str, Node] = {}  # by name, as of the last full read
        self._logs = _LogCache(app)

    def follow(self, on_change: Any) -> None:
        """Subscribe to the app's changes (once it has started); ``on_change()`` is called after each."""
        if self._unsubscribe is not None or self.app.loop is None:
            return

        def listener(changes: Changes) -> None:
            self.on_changes(changes)
            on_change()

        self._unsubscribe = self.app.subscribe(listener)
        self.mark_all()  # what happened before the subscription

    def unfollow(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def on_changes(self, changes: Changes) -> None:
        with self._lock:
            self._names |= changes.state
            self._names |= changes.logs

    def mark_all(self) -> None:
        with self._lock:
            self._everything = True

    def snapshot(self) -> tuple[dict[str, Any], dict[str, Component]] | None:
        """The app's header and all its components (resets what counts as sent); None if the app's lock
        was busy."""
        with self._lock:
            self._names.clear()
            self._everything = False
        with app_locked(self.app) as locked:
            if not locked:
                self.mark_all()
                return None
            components = self._read_all()
        self.sent = components
        self.sent_header = app_header(self.app)
        return self.sent_header, components

    def patch(self) -> tuple[dict[str, Any] | None, Patch] | None:
        """``(header if it changed, component patch)``; None when nothing changed or the lock was busy."""
        with self._lock:
            names, everything = self._names, self._everything
            self._names, self._everything = set(), False
        header = app_header(self.app)
        header_changed = header != self.sent_header
        if not names and not everything and not header_changed:
            return None
        full = everything or self._touches_flow(names)
        with app_locked(self.app) as locked:
            if not locked:
                with self._lock:
                    self._names |= names
                    self._everything |= everything
                return None
            current = self._read_all() if full else self._read(names)
        if full:
            patch = diff(self.sent, current)
            self.sent = current
        else:
            patch = diff({name: self.sent[name] for name in current}, current)
            self.sent.update(current)
        if header_changed:
            self.sent_header = header
        if not patch and not header_changed:
            return None
        return (header if header_changed else None), patch

    def _touches_flow(self, names: Iterable[str]) -> bool:
        """Whether a flow (or a component not seen yet) changed: children may have come or gone."""
        return any(self.sent.get(name, {}).get("kind") != "work" for name in names)

    def _read_all(self) -> dict[str, Component]:
        self._nodes = {node.name: node for node in components_of(self.app.root)}
        return {name: describe(self.app, node, self._logs) for name, node in self._nodes.items()}

    def _read(self, names: set[str]) -> dict[str, Component]:
        return {name: describe(self.app, self._nodes[name], self._logs) for name in names if name in self._nodes}
