"""The kernel's apps as the fronts see them (the notebook widgets, ``%lightnb``): finding one by name,
starting, restarting.

Every app of the kernel is visible, however it was started (``app.start()`` or ``%lightnb run``). An app
started by ``%lightnb run NAME`` is remembered under NAME, so running NAME again first stops it; a copy of
its root flow is kept from before it started, so it can be restarted from scratch (an app object runs
once; a restart runs a fresh copy, and NAME then refers to the copy).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import cloudpickle

from .app import LightningApp, all_apps, running_apps
from .runtime.pickling import dumps


class FrontError(Exception):
    """A user mistake a front reports as a short message (no traceback)."""


_named: dict[str, LightningApp] = {}
_pristine: weakref.WeakKeyDictionary[LightningApp, bytes] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def keep_pristine(app: LightningApp) -> None:
    """Remember the app's root as it is before it starts (best effort: an unpicklable flow has no
    restart)."""
    if app.loop is not None or app in _pristine:
        return
    try:
        _pristine[app] = dumps(app.root)
    except Exception:
        pass


def can_restart(app: LightningApp) -> bool:
    return app in _pristine


def fresh_copy(app: LightningApp) -> LightningApp:
    """A new, not started app from the copy of ``app``'s root taken before it started."""
    data = _pristine.get(app)
    if data is None:
        raise FrontError(f"app {app.name} cannot be restarted: lightnb keeps a copy to restart from only for "
                         "apps started with %lightnb run. Create a new LightningApp(...) and start it.")
    copy = LightningApp(cloudpickle.loads(data), cluster=app.cluster, storage=app.storage, env=app.env,
                        name=app.name if app.durable else None)
    copy.name = app.name
    _pristine[copy] = data
    return copy


def names_of(app: LightningApp, namespace: dict[str, Any] | None) -> list[str]:
    """The names an app is known by: its ``%lightnb run`` name and the notebook variables holding it."""
    with _lock:
        names = [name for name, known in _named.items() if known is app]
    if namespace:
        names += [key for key, value in list(namespace.items())
                  if value is app and not key.startswith("_") and key not in names]
    return names


def launch(app: LightningApp, name: str, namespace: dict[str, Any] | None = None, *,
           resume: bool = False) -> tuple[LightningApp, list[str]]:
    """Start ``app`` as NAME, first stopping the app started before under NAME. An app object that already
    ran is replaced by a fresh copy (``namespace[name]`` is rebound to it). ``resume``: carry on from the
    app's record (a durable app). Returns the running app and what was done, in words."""
    if resume and not app.durable:
        raise FrontError(f"--resume: {name} has no name, so it keeps no record to resume: make it with "
                         "LightningApp(..., name=\"...\")")
    notes: list[str] = []
    with _lock:
        previous = _named.get(name)
    if previous is not None and previous.stage == "running":
        previous.stop()
        notes.append(f"stopped the app previously started as {name} ({previous.app_id})")
    if app.stage == "running":
        raise FrontError(f"{name} is already running ({app.app_id}); stop it first with %lightnb stop {name}")
    if app.loop is not None:
        old = app
        app = fresh_copy(app)
        if namespace is not None and namespace.get(name) is old:
            namespace[name] = app
        notes.append(f"{name} had already run: started a fresh copy of it ({name} now refers to the copy)")
    keep_pristine(app)
    if resume:
        app.resume = True
    app.start()
    if app.resumed is not None:
        notes.append(f"{name}: {app.resumed.describe()}")
    with _lock:
        _named[name] = app
    return app, notes


def restart(app: LightningApp, namespace: dict[str, Any] | None = None) -> LightningApp:
    """Stop ``app`` (if running) and start a fresh copy of it; its names now refer to the copy."""
    copy = fresh_copy(app)
    app.stop()
    keep_pristine(copy)
    copy.start()
    with _lock:
        for key, known in list(_named.items()):
            if known is app:
                _named[key] = copy
    if namespace is not None:
        for key, value in list(namespace.items()):
            if value is app:
                namespace[key] = copy
    return copy


def stop_apps(targets: list[LightningApp], timeout: float | None = None) -> None:
    """Stop several apps at once (each stop waits for its works and cluster); return when all stopped, or
    after ``timeout`` seconds."""
    def stop(app: LightningApp) -> None:
        try:
            app.stop(timeout=timeout)
        except Exception:
            pass  # an app that fails to stop must not keep the others running

    threads = [threading.Thread(target=stop, args=(app,), name="lightnb-stop", daemon=True) for app in targets]
    for thread in threads:
        thread.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


def resolve(token: str, namespace: dict[str, Any] | None) -> LightningApp:
    """The app a user means by ``token``: a notebook variable, a ``%lightnb run`` name, an app id or an
    app's name. ``FrontError`` naming what exists otherwise."""
    value = (namespace or {}).get(token)
    if isinstance(value, LightningApp):
        return value
    with _lock:
        if token in _named:
            return _named[token]
    apps = all_apps()
    for app in apps:
        if app.app_id == token:
            return app
    matching = [app for app in apps if app.name == token]
    if len(matching) == 1:
        return matching[0]
    if value is not None:
        raise FrontError(f"{token} is a {type(value).__name__}, not a LightningApp")
    known = ", ".join(describe_app(app, namespace) for app in apps) or "none"
    if len(matching) > 1:
        raise FrontError(f"several apps are named {token}: {known}. Use a variable name or an app id.")
    raise FrontError(f"no app {token!r} in this kernel (apps: {known})")


def default_app(namespace: dict[str, Any] | None) -> LightningApp:
    """The app meant when none is named: the only running one, else the latest one."""
    running = running_apps()
    if len(running) == 1:
        return running[0]
    if len(running) > 1:
        known = ", ".join(describe_app(app, namespace) for app in running)
        raise FrontError(f"several apps are running ({known}); name one")
    apps = all_apps()
    if not apps:
        raise FrontError("no app in this kernel yet: create one with app = LightningApp(Root()) and start it "
                         "with %lightnb run app")
    return apps[-1]


def describe_app(app: LightningApp, namespace: dict[str, Any] | None) -> str:
    names = names_of(app, namespace)
    return f"{names[0] if names else app.name} ({app.app_id}, {app.stage})"
