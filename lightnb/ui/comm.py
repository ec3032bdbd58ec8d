"""The ``lightnb`` comm target: every app of the kernel for the JupyterLab side panel (or any front end).

A front end opens a comm to the target ``lightnb`` (registered by ``%load_ext lightnb``); the kernel sends a
``snapshot`` of every app, then ``patch``es — at most 10 a second per comm, holding only what changed —
over IOPub, so they arrive while a cell is busy. Commands (``stop_app``, ``stop_work``, ``refresh``,
``reveal_view``) only enqueue work and are answered by an ``ack``. The schema is docs/comm-protocol.md.
"""

from __future__ import annotations

import sys
import traceback
import weakref
from typing import Any

from ..app import LightningApp, all_apps, on_app_start
from .model import AppTracker, app_header
from .pump import pump

PROTOCOL_VERSION = 1
TARGET = "lightnb"

_sessions: weakref.WeakSet[PanelSession] = weakref.WeakSet()


class PanelSession:
    """One open ``lightnb`` comm: what it was sent, and its commands. Written only by the UI pump."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.seq = 0
        self.closed = False
        self._trackers: dict[str, AppTracker] = {}
        self._snapshot_due = True
        self._unwatch_start = on_app_start(lambda app: pump().mark(self))
        answer_where_sent(comm)
        comm.on_msg(self._on_msg)
        comm.on_close(self._on_close)
        _sessions.add(self)
        pump().mark(self)

    # -- the pump's side ----------------------------------------------------------------------------------
    def flush(self) -> None:
        if self.closed:
            return
        apps = all_apps()
        if self._snapshot_due:
            entries = self._full(apps)
            if entries is None:
                pump().mark(self)
                return
            self._snapshot_due = False
            self._send({"type": "snapshot", "apps": entries})
            return
        changed: list[dict[str, Any]] = []
        for app in apps:
            tracker = self._trackers.get(app.app_id)
            if tracker is None:
                entry = self._track(app)
                if entry is not None:
                    changed.append(entry)
                continue
            tracker.follow(self._changed)  # an app that started since (a no-op otherwise)
            result = tracker.patch()
            if result is not None:
                _, components = result
                changed.append({**app_header(app), "components": components})
        current = {app.app_id for app in apps}
        removed = [app_id for app_id in self._trackers if app_id not in current]
        for app_id in removed:
            self._trackers.pop(app_id).unfollow()
        if changed or removed:
            self._send({"type": "patch", "apps": changed, "removed": removed})

    def _full(self, apps: list[LightningApp]) -> list[dict[str, Any]] | None:
        for tracker in self._trackers.values():
            tracker.unfollow()
        self._trackers = {}
        entries = []
        for app in apps:
            entry = self._track(app)
            if entry is None:
                return None
            entries.append(entry)
        return entries

    def _track(self, app: LightningApp) -> dict[str, Any] | None:
        tracker = AppTracker(app)
        snapshot = tracker.snapshot()
        if snapshot is None:
            return None
        self._trackers[app.app_id] = tracker
        tracker.follow(self._changed)
        header, components = snapshot
        return {**header, "components": components}

    def _changed(self) -> None:
        pump().mark(self)

    def _send(self, message: dict[str, Any]) -> None:
        self.seq += 1
        self.comm.send({"v": PROTOCOL_VERSION, "seq": self.seq, **message})

    def send_event(self, message: dict[str, Any]) -> None:
        """(pump) Send an event message such as ``reveal`` (not numbered: ``seq`` orders state messages)."""
        if not self.closed:
            self.comm.send({"v": PROTOCOL_VERSION, **message})

    # -- messages from the front end (enqueue only) -------------------------------------------------------
    def _on_msg(self, msg: dict[str, Any]) -> None:
        data = msg.get("content", {}).get("data")
        pump().call(lambda: self._handle(data))

    def _handle(self, data: Any) -> None:
        """(pump) Answer one message from the front end."""
        if not isinstance(data, dict) or data.get("type") != "cmd":
            return  # unknown message types are ignored (the protocol's forward compatibility rule)
        command_id = data.get("id")
        try:
            version = data.get("v", PROTOCOL_VERSION)
            if not isinstance(version, int) or version > PROTOCOL_VERSION:
                raise CommandError(f"protocol version {version!r} is newer than this kernel's "
                                   f"({PROTOCOL_VERSION}); upgrade lightnb in the kernel's environment")
            self._command(str(data.get("cmd")), data)
        except CommandError as error:
            self.send_event({"type": "ack", "id": command_id, "ok": False, "error": str(error)})
        except Exception as error:
            traceback.print_exc(file=sys.__stderr__)
            self.send_event({"type": "ack", "id": command_id, "ok": False,
                             "error": f"{type(error).__name__}: {error}"})
        else:
            self.send_event({"type": "ack", "id": command_id, "ok": True, "error": None})

    def _command(self, command: str, data: dict[str, Any]) -> None:
        if command == "refresh":
            self._snapshot_due = True
            pump().mark(self)
            return
        if command not in {"stop_app", "stop_work", "reveal_view"}:
            raise CommandError(f"unknown command {command!r} (known: stop_app, stop_work, refresh, "
                               "reveal_view)")
        app = _find_app(data.get("app"))
        if command == "stop_app":
            if app.loop is not None:
                app.loop.request_stop()
        elif command == "stop_work":
            name = str(data.get("work"))
            try:
                work = app.get_component_by_name(name)
            except KeyError:
                raise CommandError(f"app {app.app_id} has no work {name!r}") from None
            if not hasattr(work, "stop"):
                raise CommandError(f"{name} is a flow, not a work")
            if app.loop is not None:
                app.loop.call_soon(work.stop)
        else:
            from IPython.display import display

            from .appview import AppView

            display(AppView(app))

    def _on_close(self, msg: Any) -> None:
        pump().call(self._close)

    def _close(self) -> None:
        self.closed = True
        self._unwatch_start()
        for tracker in self._trackers.values():
            tracker.unfollow()
        self._trackers = {}
        pump().forget(self)


def answer_where_sent(comm: Any) -> None:
    """Let the front end's messages on ``comm`` run on the subshell it sent them to.

    ipykernel 7 routes a comm's incoming messages to the subshell the comm last *published* from — for
    lightnb's comms the main shell, where a blocking cell holds them until it ends. Their handlers only
    enqueue and are thread-safe, so a JupyterLab that sends comm messages on a subshell (4.4 and later)
    gets its button or form handled at once, even while a cell blocks.
    """
    if hasattr(comm, "_reply_subshell_for"):
        comm._reply_subshell_for = lambda data, default: default


class CommandError(Exception):
    """A command the kernel cannot carry out; its text goes back in the ``ack``."""


def _find_app(app_id: Any) -> LightningApp:
    for app in all_apps():
        if app.app_id == app_id:
            return app
    known = ", ".join(app.app_id for app in all_apps()) or "none"
    raise CommandError(f"no app {app_id!r} in this kernel (apps: {known})")


def open_session(comm: Any, msg: dict[str, Any]) -> None:
    """The comm target's callback: a front end opened a ``lightnb`` comm."""
    PanelSession(comm)


def register(comm_manager: Any) -> None:
    comm_manager.register_target(TARGET, open_session)


def unregister(comm_manager: Any) -> None:
    if TARGET in getattr(comm_manager, "targets", {}):
        comm_manager.unregister_target(TARGET, open_session)


def reveal(app: LightningApp) -> int:
    """Ask every connected side panel to show ``app``; returns how many were asked."""
    sessions = [session for session in list(_sessions) if not session.closed]
    for session in sessions:
        pump().call(lambda s=session: s.send_event({"type": "reveal", "app": app.app_id}))
    return len(sessions)
