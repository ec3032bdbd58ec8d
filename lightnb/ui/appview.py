"""``AppView``: the live view of an app in the notebook.

The component tree with each work's stage (colour and icon), a progress bar for a ``progress`` attribute in
[0, 1], the last lines each component printed, failure tracebacks, the app's stage, stop and restart
buttons, and ``configure_layout()``'s tabs (pages served by works as iframes, through the notebook
server's proxy when there is one).

It keeps updating while a cell blocks: the app's loop (its own thread) only records what changed, and the
UI pump sends it, coalesced to at most 10 messages a second per view, holding only what changed.

Wire format (traits, all written by the pump): ``header`` (the App header), ``components`` (every
Component at revision ``base_seq``), ``patch`` (``{"seq", "changes"}``: Component patches since the
previous ``patch``; the browser applies ``seq == its seq + 1`` and asks for a ``refresh`` on a gap),
``tabs``, ``proxy``, ``can_restart``.

>>> app = LightningApp(Root()); app.start()
>>> AppView(app)             # or just `app` as a cell's last line, or app.view()
"""

from __future__ import annotations

import threading
from typing import Any

import traitlets

from .. import session
from ..app import LightningApp, on_app_start
from .layout import layout_tabs
from .model import AppTracker, app_locked
from .pump import pump
from .urls import proxy_settings
from .widget import STATIC, PumpedWidget, esm


class AppView(PumpedWidget):
    """The live view of a :class:`~lightnb.LightningApp` (shown by ``app.view()`` and by ``app`` itself).

    Example
    -------
    >>> from lightnb.ui import AppView
    >>> AppView(app)
    """

    _esm = esm("appview.js")
    _css = (STATIC / "vendor" / "uPlot.min.css").read_text() + "\n" + (STATIC / "lightnb.css").read_text()

    header = traitlets.Dict().tag(sync=True)
    components = traitlets.Dict().tag(sync=True)
    base_seq = traitlets.Int(0).tag(sync=True)
    patch = traitlets.Dict().tag(sync=True)
    tabs = traitlets.List().tag(sync=True)
    proxy = traitlets.Dict().tag(sync=True)
    can_restart = traitlets.Bool(False).tag(sync=True)

    # Set before anything can fail in __init__, so that closing a refused view (ipywidgets' __del__) is quiet.
    _tracker: Any = None
    _unwatch_start: Any = None

    def __init__(self, app: LightningApp, **kwargs: Any) -> None:
        if not isinstance(app, LightningApp):
            raise TypeError(f"AppView shows a lightnb.LightningApp, not {type(app).__name__}")
        self._app = app
        self._tracker = AppTracker(app)
        self._seq = 0
        self._rebase = False
        self._tabs_due = True
        self._closed_for_app = False
        self._restarting = threading.Lock()
        first = self._tracker.snapshot()
        header, components = first if first is not None else ({}, {})
        super().__init__(header=header, components=components, base_seq=0, patch={"seq": 0, "changes": {}},
                         tabs=self._read_tabs() or [], proxy=proxy_settings(),
                         can_restart=session.can_restart(app), **kwargs)
        self._tabs_due = False
        self._watch(app)

    @property
    def app(self) -> LightningApp:
        """The app shown (after a restart from the view, the fresh copy)."""
        return self._app

    # -- following the app --------------------------------------------------------------------------------
    def _watch(self, app: LightningApp) -> None:
        if app.loop is not None:
            self._tracker.follow(self._changed)
            pump().mark(self)
            return

        def started(started_app: LightningApp) -> None:
            if started_app is app:
                pump().call(lambda: self._follow(app))

        self._unwatch_start = on_app_start(started)
        if app.loop is not None:  # it started meanwhile, before the listener was in place
            started(app)

    def _follow(self, app: LightningApp) -> None:
        """(pump) Show ``app`` from now on (it started, or a restart replaced the one shown)."""
        if self._unwatch_start is not None:
            self._unwatch_start()
            self._unwatch_start = None
        if app is not self._app:
            self._tracker.unfollow()
            self._app = app
            self._tracker = AppTracker(app)
            self._rebase = True
        self._closed_for_app = False
        self._tabs_due = True
        self._tracker.follow(self._changed)
        self.flush()

    def _changed(self) -> None:
        pump().mark(self)

    # -- the pump's side ----------------------------------------------------------------------------------
    def flush(self) -> None:
        """(pump) Send what changed since the last flush, in one message."""
        if self.comm is None or self._closed_for_app:
            return
        ended = self._app.loop is not None and self._app.loop.done.is_set()
        updates: dict[str, Any] = {}
        if self._rebase or ended:
            snapshot = self._tracker.snapshot()
            if snapshot is None:
                pump().mark(self)
                return
            header, components = snapshot
            self._rebase = False
            self._seq += 1
            updates.update(header=header, components=components, base_seq=self._seq,
                           patch={"seq": self._seq, "changes": {}}, can_restart=session.can_restart(self._app))
            self._tabs_due = True
        else:
            result = self._tracker.patch()
            if result is not None:
                header, changes = result
                if header is not None:
                    updates["header"] = header
                if changes:
                    self._seq += 1
                    updates["patch"] = {"seq": self._seq, "changes": changes}
                    if any(change is None or "url" in change or "kind" in change
                           for change in changes.values()):
                        self._tabs_due = True
        if self._tabs_due:
            tabs = self._read_tabs()
            if tabs is not None:
                self._tabs_due = False
                if tabs != self.tabs:
                    updates["tabs"] = tabs
        if updates:
            with self.hold_sync():
                for key, value in updates.items():
                    setattr(self, key, value)
        if ended:
            # The final state is sent (and kept in a saved notebook); nothing changes any more.
            self._tracker.unfollow()
            self._closed_for_app = True

    def _read_tabs(self) -> list[dict[str, Any]] | None:
        with app_locked(self._app) as locked:
            return layout_tabs(self._app.root) if locked else None

    def _refresh(self) -> None:
        """(pump) The browser missed a patch: send everything as a new base revision."""
        self._rebase = True
        self._closed_for_app = False
        self.flush()

    def resend(self) -> None:
        """(pump) A fresh front end asked for the whole state (a page reload)."""
        self._rebase = True
        self._closed_for_app = False
        self.flush()
        super().resend()

    # -- messages from the browser (enqueue only) ---------------------------------------------------------
    def on_message(self, content: dict[str, Any]) -> None:
        kind = content.get("type")
        app = self._app
        loop = app.loop
        if kind == "refresh":
            pump().call(self._refresh)
        elif kind == "stop_app" and loop is not None:
            loop.request_stop()
        elif kind == "stop_work" and loop is not None:
            name = content.get("work")
            try:
                work = app.get_component_by_name(str(name))
            except KeyError:
                return
            if hasattr(work, "stop"):
                loop.call_soon(work.stop)
        elif kind == "restart" and session.can_restart(app):
            threading.Thread(target=self._restart, args=(app,), name="lightnb-restart", daemon=True).start()

    def _restart(self, app: LightningApp) -> None:
        if not self._restarting.acquire(blocking=False):
            return
        try:
            copy = session.restart(app, _user_namespace())
        finally:
            self._restarting.release()
        pump().call(lambda: self._follow(copy))

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.unfollow()
        if self._unwatch_start is not None:
            self._unwatch_start()
        pump().forget(self)
        super().close()

    def __repr__(self) -> str:
        return f"<AppView of {self._app.name} ({self._app.app_id}): {self._app.stage}>"


def _user_namespace() -> dict[str, Any] | None:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return None if shell is None else shell.user_ns
