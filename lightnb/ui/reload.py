"""Hot reload in the kernel: re-running the cell that defines a flow or work class a running app uses — or
``importlib.reload`` of a local module defining one — switches the app to the new code without stopping it.

``%load_ext lightnb`` registers :func:`check` as an IPython ``post_run_cell`` hook. After each cell it looks
up, for every running app (``hot_reload=True``, the default), the classes its components use by
``__module__`` + ``__qualname__``: in the notebook's namespace for classes of ``__main__``, in
``sys.modules`` for a module's. A class object that differs from the one in use is an edit. The plan
(:mod:`lightnb.core.reload`) is made here, on the kernel's thread — a refusal is printed under the cell —
and applied on the app's loop thread between two passes, under its lock (``AppLoop.call_soon``): each
component's ``__class__`` becomes the new class, the flow gets a pass at once (``Touched("root")``), and
each component's log says what changed.

A flow's next pass runs the new ``run()``. A work's next *call* runs the new class (a call running now
finishes on the old code): the worker keeps a work's object between calls only while its class is the same,
so the new class starts from a fresh object there (private attributes set by the old code are not carried
over; public state is).
"""

from __future__ import annotations

import sys
import traceback
import weakref
from typing import Any

from ..app import LightningApp, running_apps
from ..core.events import Logged, Touched
from ..core.reload import ClassKey, ReloadPlan, apply_plan, classes_in_use, plan_reload

_installed: dict[str, Any] = {}
# The new classes refused for each app: reported once, not after every cell.
_refused: weakref.WeakKeyDictionary[LightningApp, dict[ClassKey, type]] = weakref.WeakKeyDictionary()


def install(shell: Any) -> None:
    """Check for edited classes after every cell of ``shell`` (idempotent)."""
    if "shell" in _installed:
        return

    def post_run_cell(result: Any = None) -> None:
        try:
            check(shell.user_ns)
        except Exception:
            traceback.print_exc()

    shell.events.register("post_run_cell", post_run_cell)
    _installed["shell"] = (shell, post_run_cell)


def uninstall() -> None:
    installed = _installed.pop("shell", None)
    if installed is not None:
        shell, hook = installed
        try:
            shell.events.unregister("post_run_cell", hook)
        except ValueError:
            pass


def check(namespace: dict[str, Any]) -> list[tuple[LightningApp, ReloadPlan]]:
    """Switch the running apps whose component classes were redefined; returns what was planned."""
    planned = []
    for app in running_apps():
        if not getattr(app, "hot_reload", True) or app.loop is None:
            continue
        refused = _refused.setdefault(app, {})
        new = {}
        for key, cls in classes_in_use(app.root).items():
            current = _lookup(key, namespace)
            if isinstance(current, type) and current is not cls and refused.get(key) is not current:
                new[key] = current
        if not new:
            continue
        plan = plan_reload(app.root, new)
        for key, cls in new.items():
            if not any(swap.new is cls for swap in plan.swaps):
                refused[key] = cls  # not applied anywhere: said once, not after every cell
        for refusal in plan.refusals:
            print(f"{refusal.describe()} [app {app.name}]", file=sys.stderr)
            app.loop.post(Logged(refusal.component, "stderr", refusal.describe() + "\n"))
        if plan.swaps:
            _schedule(app, plan)
        planned.append((app, plan))
    return planned


def _schedule(app: LightningApp, plan: ReloadPlan) -> None:
    loop = app.loop
    assert loop is not None

    def swap() -> None:
        for applied in apply_plan(plan, app.root):
            loop.post(Logged(applied.component, "stdout", applied.describe() + "\n"))
        loop.post(Touched("root"))

    loop.call_soon(swap)


def _lookup(key: ClassKey, namespace: dict[str, Any]) -> Any:
    """The object ``module.qualname`` names now (``None`` if nothing does: a deleted class is no edit)."""
    module_name, qualname = key
    if "<locals>" in qualname:
        return None
    if module_name == "__main__":
        scope: Any = namespace
        getter = dict.get
    else:
        scope = sys.modules.get(module_name)
        if scope is None:
            return None
        getter = getattr
    for part in qualname.split("."):
        scope = getter(scope, part, None)
        if scope is None:
            return None
        getter = getattr
    return scope
