"""Hot reload, decided: given a running app's component tree and newly defined classes, what switching the app
to the new code means — which components change class, which attributes they gain (with the new
``__init__``'s defaults) or lose — and which edits cannot be applied (refused, with a message naming them).

Components are matched to new classes by ``(__module__, __qualname__)``: re-running the cell that defines
``class Train(LightningWork)`` makes a new class with the same key. Planning reads the tree and calls the new
classes' ``__init__`` (through ``defaults_of``); :func:`apply_plan` changes the tree and must run where the
tree may change (between passes, under the app's lock). The notebook front (``lightnb.ui.reload``) finds the
new classes and schedules the swap.

The new attributes' defaults come from a throwaway instance of the new class, built by
:func:`defaults_by_construction`: its ``__init__`` runs once per edit (so an ``__init__`` with side effects —
opening a file, starting something — does them once more; keep those in ``run()``). Arguments without a
default are taken from the running component's attribute of the same name (``def __init__(self, drive):
self.drive = drive``); a class whose ``__init__`` needs anything else, or fails, is refused.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .component import Component, Node
from .flow import LightningFlow
from .values import plain
from .work import LightningWork

ClassKey = tuple[str, str]
DefaultsOf = Callable[[type, Component], dict[str, Any]]


def class_key(cls: type) -> ClassKey:
    return cls.__module__, cls.__qualname__


@dataclass(frozen=True)
class Swap:
    """``component`` switches from ``old`` to ``new``; ``added`` attributes (with their new defaults) and
    ``dropped`` ones."""

    component: str
    old: type
    new: type
    added: dict[str, Any] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"now runs the new code of {self.new.__qualname__}"]
        if self.added:
            parts.append("added " + ", ".join(f"{key}={value!r}" for key, value in self.added.items()))
        if self.dropped:
            parts.append("dropped " + ", ".join(self.dropped))
        return f"lightnb: reloaded {self.component}: " + "; ".join(parts)


@dataclass(frozen=True)
class Refusal:
    """An edit that cannot be applied to ``component``: it keeps running its old code."""

    component: str
    reason: str

    def describe(self) -> str:
        return f"lightnb: not reloaded {self.component} (it keeps its old code): {self.reason}"


@dataclass
class ReloadPlan:
    swaps: list[Swap] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.swaps or self.refusals)


def components_of(root: Node) -> Iterable[Component]:
    """The flows and works of the tree (not the structures holding them)."""
    for node in root._walk():
        if isinstance(node, Component):
            yield node


def classes_in_use(root: Node) -> dict[ClassKey, type]:
    """The component classes the tree uses now, by key."""
    return {class_key(type(component)): type(component) for component in components_of(root)}


def plan_reload(root: Node, new_classes: Mapping[ClassKey, type],
                defaults_of: DefaultsOf | None = None) -> ReloadPlan:
    """What switching ``root``'s components to ``new_classes`` (by key) does; components whose class is the
    same object, or has no new class, are left alone."""
    defaults_of = defaults_of or defaults_by_construction
    plan = ReloadPlan()
    learned: dict[type, dict[str, Any] | Exception] = {}
    for component in components_of(root):
        old = type(component)
        new = new_classes.get(class_key(old))
        if new is None or new is old:
            continue
        name = component.name
        refusal = _kind_change(component, old, new)
        if refusal is not None:
            plan.refusals.append(Refusal(name, refusal))
            continue
        if new not in learned:
            try:
                learned[new] = defaults_of(new, component)
            except Exception as error:
                learned[new] = error
        defaults = learned[new]
        if isinstance(defaults, Exception):
            plan.refusals.append(Refusal(name, f"the new {new.__qualname__}.__init__ failed: "
                                               f"{type(defaults).__name__}: {defaults}"))
            continue
        old_public = {key: value for key, value in component.__dict__.items() if not key.startswith("_")}
        old_children = {key for key, value in old_public.items() if isinstance(value, Node)}
        new_children = {key for key, value in defaults.items() if isinstance(value, Node)}
        placeholders = {key for key, value in defaults.items() if value is None}  # children made in run()
        if old_children - placeholders != new_children:
            changed = sorted(old_children ^ new_children)
            plan.refusals.append(Refusal(name, f"the new {new.__qualname__} changes its child components "
                                               f"({', '.join(changed)}): restart the app to change the tree"))
            continue
        added = {key: value for key, value in defaults.items() if key not in old_public}
        dropped = tuple(key for key in old_public  # what the framework set (a work's url) stays
                        if key not in defaults and key not in getattr(component, "_undeclared_state", ()))
        plan.swaps.append(Swap(name, old, new, added, dropped))
    return plan


def _kind_change(component: Component, old: type, new: type) -> str | None:
    if not isinstance(new, type):
        return f"{old.__qualname__} is now {type(new).__name__}, not a class"
    for kind in (LightningFlow, LightningWork):
        if isinstance(component, kind) and not issubclass(new, kind):
            other = "a LightningWork" if issubclass(new, LightningWork) else \
                "a LightningFlow" if issubclass(new, LightningFlow) else "not a component"
            return (f"{old.__qualname__} was a {kind.__name__} and the new {new.__qualname__} is {other}: a "
                    "component cannot change kind while the app runs (restart the app)")
    return None


def defaults_by_construction(new: type, component: Component) -> dict[str, Any]:
    """The public attributes a fresh ``new`` instance has (its ``__init__`` runs: see the module notes).
    Required arguments are taken from ``component``'s attributes of the same name."""
    arguments: dict[str, Any] = {}
    for parameter in list(inspect.signature(new.__init__).parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is not parameter.empty:
            continue
        for candidate in (parameter.name, f"_{parameter.name}"):
            if candidate in component.__dict__:
                value = component.__dict__[candidate]
                arguments[parameter.name] = plain(value) if not isinstance(value, Node) else value
                break
        else:
            raise TypeError(f"__init__ needs the argument {parameter.name!r}, which lightnb cannot supply (no "
                            f"attribute {parameter.name!r} on the running component)")
    # A child component passed on is attached to the throwaway instance: keep its place in the tree.
    children = {key: (value._parent, value._key) for key, value in arguments.items() if isinstance(value, Node)}
    for key in children:
        object.__setattr__(arguments[key], "_parent", None)
    try:
        instance = new(**arguments)
    finally:
        for key, (parent, place) in children.items():
            object.__setattr__(arguments[key], "_parent", parent)
            object.__setattr__(arguments[key], "_key", place)
    return {key: value for key, value in instance.__dict__.items() if not key.startswith("_")}


def apply_plan(plan: ReloadPlan, root: Node) -> list[Swap]:
    """Switch the components of ``plan`` to their new classes, adding and dropping attributes (run between
    passes, under the app's lock). A component whose class changed since the plan was made is skipped.
    Returns the swaps applied."""
    from .flow import find_component

    applied = []
    for swap in plan.swaps:
        try:
            component = find_component(root, swap.component)
        except Exception:
            continue
        if type(component) is not swap.old:
            continue
        object.__setattr__(component, "__class__", swap.new)
        for key in swap.dropped:
            component.__dict__.pop(key, None)
        if swap.added:
            object.__setattr__(component, "_sealed", False)
            try:
                for key, value in swap.added.items():
                    setattr(component, key, plain(value))  # reported like any set: views and journal see it
            finally:
                object.__setattr__(component, "_sealed", True)
        applied.append(swap)
    return applied
