"""``ParamsForm``: a form over a component's typed attributes that sets them on the running app.

Submitting validates what was typed in the kernel (text in a number field, a value out of range, an
unknown choice are shown next to the field and never reach the app), then hands the new values to the
app's loop, which applies them together between two flow passes — so the flow sees them at once and
reacts (e.g. starts training with the new learning rate). The fields show the attributes' current values
as the app changes them.
"""

from __future__ import annotations

import threading
from typing import Any

import traitlets

from ..app import LightningApp, all_apps, on_app_start
from ..core.component import Component
from ..core.events import Changes
from .fields import current_values, form_fields, validate
from .pump import pump
from .widget import STATIC, PumpedWidget, esm


class ParamsForm(PumpedWidget):
    """A form editing ``names`` (default: every int, float, str, bool or choice attribute) of a flow or
    work; submitting sets them on the running app.

    Example
    -------
    >>> class Train(LightningFlow):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.lr: float = 0.01
    ...         self.optimizer: Literal["adam", "sgd"] = "adam"
    >>> ParamsForm(app.root, ["lr", "optimizer"], ranges={"lr": (0, 1)})
    """

    _esm = esm("params.js")
    _css = STATIC / "lightnb.css"

    title = traitlets.Unicode().tag(sync=True)
    fields = traitlets.List().tag(sync=True)
    values = traitlets.Dict().tag(sync=True)
    errors = traitlets.Dict().tag(sync=True)
    status = traitlets.Dict().tag(sync=True)

    # Set before anything can fail in __init__, so that closing a refused form (ipywidgets' __del__) is quiet.
    _unsubscribe: Any = None
    _unwatch_start: Any = None

    def __init__(self, component: Component, names: list[str] | None = None, *,
                 ranges: dict[str, tuple[float | None, float | None]] | None = None,
                 choices: dict[str, list[Any]] | None = None, title: str | None = None) -> None:
        if not isinstance(component, Component):
            raise TypeError(f"ParamsForm edits a LightningFlow or LightningWork, not "
                            f"{type(component).__name__}")
        self._component = component
        self._fields = form_fields(component, names, ranges=ranges, choices=choices)
        self._submissions = 0
        self._unsubscribe: Any = None
        self._subscribed_to: LightningApp | None = None
        self._subscribe_lock = threading.Lock()
        self._unwatch_start: Any = None
        super().__init__(title=title or f"Parameters of {component.name} ({type(component).__name__})",
                         fields=[f.to_json() for f in self._fields],
                         values=current_values(component, self._fields), errors={},
                         status={"state": "idle", "message": "", "seq": 0})
        self._follow_app()

    @property
    def component(self) -> Component:
        return self._component

    # -- the pump's side ----------------------------------------------------------------------------------
    def flush(self) -> None:
        """(pump) Show the attributes' current values."""
        if self.comm is None:
            return
        values = current_values(self._component, self._fields)
        if values != self.values:
            self.values = values

    def _show(self, **traits: Any) -> None:
        with self.hold_sync():
            for key, value in traits.items():
                setattr(self, key, value)

    # -- following the app's changes ----------------------------------------------------------------------
    def _follow_app(self) -> None:
        """Flush when the component's state changes — once its app runs (now, or when it starts)."""
        if self._unwatch_start is None:
            def started(app: LightningApp) -> None:
                if app.root is self._component.root:
                    self._subscribe(app)

            self._unwatch_start = on_app_start(started)
        app = _app_of(self._component)
        if app is not None and app.loop is not None:
            self._subscribe(app)

    def _subscribe(self, app: LightningApp) -> None:
        name = self._component.name

        def listener(changes: Changes) -> None:
            if name in changes.state:
                pump().mark(self)

        with self._subscribe_lock:
            if self._unsubscribe is not None and self._subscribed_to is app:
                return
            if self._unsubscribe is not None:
                self._unsubscribe()
            self._unsubscribe, self._subscribed_to = app.subscribe(listener), app
        pump().mark(self)  # what changed before the subscription

    # -- messages from the browser (enqueue only) ---------------------------------------------------------
    def on_message(self, content: dict[str, Any]) -> None:
        if content.get("type") != "submit" or not isinstance(content.get("values"), dict):
            return
        self._submissions += 1
        seq = self._submissions
        values, errors = validate(self._fields, content["values"])
        if errors:
            message = "nothing was changed: " + "; ".join(f"{name}: {text}" for name, text in errors.items())
            pump().call(lambda: self._show(errors=errors, status={"state": "invalid", "message": message,
                                                                   "seq": seq}))
            return
        component = self._component
        described = ", ".join(f"{name}={value!r}" for name, value in values.items())

        def apply() -> None:
            for name, value in values.items():
                setattr(component, name, value)
            pump().call(lambda: self._show(errors={}, values=current_values(component, self._fields),
                                           status={"state": "applied", "seq": seq,
                                                   "message": f"applied {described} to {component.name}"}))

        app = _app_of(component)
        loop = app.loop if app is not None else None
        if app is not None and loop is not None and loop.done.is_set():
            message = (f"nothing was applied: the app {app.name!r} is not running ({app.stage}); start a new one, "
                       f"or restart it from its view, to change {component.name}")
            pump().call(lambda: self._show(errors={}, status={"state": "error", "message": message, "seq": seq}))
            return
        if loop is not None:
            pump().call(lambda: self._show(errors={}, status={"state": "sending", "seq": seq,
                                                              "message": f"applying {described}…"}))
            loop.call_soon(apply)  # between two flow passes, all values at once
        else:
            apply()  # no running app: a plain object

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._unwatch_start is not None:
            self._unwatch_start()
        pump().forget(self)
        super().close()


def _app_of(component: Component) -> LightningApp | None:
    root = component.root
    for app in reversed(all_apps()):
        if app.root is root:
            return app
    return None
