"""The component tree: what flows, works and structures share.

A component's state is its public attributes. They are declared in ``__init__``; afterwards only declared
attributes may be set (and child components attached). Every state change is reported to the component's
:class:`Observer`: in the kernel that is the app's event loop, on a Dask worker it is the channel that streams
the work's changes back. A detached component (no app) has no observer and behaves like a plain object.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, ClassVar

from .values import (
    LIT_PREFIX,
    StateValue,
    Tracker,
    check_state_value,
    describe_type,
    lit_path,
    to_json,
    track,
)
from .view import ComponentView

if TYPE_CHECKING:
    from datetime import datetime

    from .flow import LightningFlow
    from .work import LightningWork


class Observer(ABC):
    """Receives the state changes of the components it is attached to: in the kernel the app's engine
    (:class:`lightnb.core.engine.EngineState`), on a worker the channel of the running call. Every method is
    abstract: an observer that forgets one cannot be created, instead of silently doing nothing."""

    @abstractmethod
    def mutating(self) -> AbstractContextManager[Any]:
        """Held while a component's state changes (the app applies outside changes between passes)."""

    @abstractmethod
    def on_set(self, component: Node, attribute: str, value: Any) -> None:
        """``component.attribute`` was set to ``value`` (or changed in place)."""

    @abstractmethod
    def on_attach(self, parent: Node, child: Node) -> None:
        """``child`` was attached under ``parent`` (a dynamic component)."""

    @abstractmethod
    def on_detach(self, parent: Node, child: Node) -> None:
        """``child`` was removed from under ``parent`` (``work.delete()``); its place is free again."""

    @abstractmethod
    def on_run(self, work: LightningWork, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``work.run(*args, **kwargs)`` was called where the work does not execute: dispatch it."""

    @abstractmethod
    def on_stop(self, work: LightningWork) -> None:
        """``work.stop()``."""

    @abstractmethod
    def check_stop(self, work: LightningWork) -> None:
        """``work.check_stop()``: raise ``WorkStopped`` if the running work was asked to stop."""

    @abstractmethod
    def on_end(self, flow: LightningFlow, message: str, failed: bool) -> None:
        """``flow.stop(message)`` / ``flow.fail(message)``."""

    @abstractmethod
    def on_schedule(self, flow: LightningFlow, key: str, cron: str, start_time: datetime | None) -> bool:
        """``flow.schedule(cron)`` at the call site ``key``: whether it fires in this pass."""

    @abstractmethod
    def on_output(self, component: Node, stream: str, text: str) -> None:
        """Output for ``component``'s log that did not come through ``print`` (a subprocess's pipe)."""

    @abstractmethod
    def enter_flow(self, flow: LightningFlow) -> None:
        """A flow's ``run()`` begins (what it prints is its own)."""

    @abstractmethod
    def exit_flow(self, flow: LightningFlow) -> None:
        """A flow's ``run()`` ended."""


def log_output(component: Node, text: str, stream: str = "stdout") -> None:
    """Add ``text`` to a component's log (for output that does not come through ``print``, such as a
    subprocess's pipe). Outside a running app it is printed."""
    observer = component._observer
    if observer is not None:
        observer.on_output(component, stream, text)
    else:
        print(text, end="")


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class _AttributeTracker(Tracker):
    """Reports in-place mutation of ``component.attribute`` (a list or dict) as a set of that attribute."""

    __slots__ = ("component", "attribute")

    def __init__(self, component: Node, attribute: str) -> None:
        self.component = component
        self.attribute = attribute

    def check(self, value: Any) -> None:
        check_state_value(value, f"{self.component.name}.{self.attribute}")

    def changed(self) -> None:
        observer = self.component._observer
        if observer is not None and self.attribute in self.component.__dict__:
            with observer.mutating():
                observer.on_set(self.component, self.attribute, self.component.__dict__[self.attribute])


class _NodeMeta(type):
    """Seals a component once its outermost ``__init__`` returned: new public attributes are refused."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        component = super().__call__(*args, **kwargs)
        object.__setattr__(component, "_sealed", True)
        component._validate_definition()
        return component


class Node(metaclass=_NodeMeta):
    """A place in the component tree: its parent, the attribute (or key) it hangs on, its dotted name."""

    _parent: Node | None
    _key: str | None
    _sealed: bool
    _observer: Observer | None

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Set up here rather than in __init__ so a subclass that forgets super().__init__() still works.
        node = object.__new__(cls)
        object.__setattr__(node, "_parent", None)
        object.__setattr__(node, "_key", None)
        object.__setattr__(node, "_sealed", False)
        object.__setattr__(node, "_observer", None)
        return node

    def _validate_definition(self) -> None:
        return None

    @property
    def name(self) -> str:
        """The dotted path from the root flow, e.g. ``root.train`` (``root`` for a detached component)."""
        if self._parent is None:
            # A work executing on a worker travels alone; it is told the name it has in the app.
            return self.__dict__.get("_detached_name", "root")
        return f"{self._parent.name}.{self._key}"

    @property
    def root(self) -> Node:
        node = self
        while node._parent is not None:
            node = node._parent
        return node

    def _children(self) -> Iterator[tuple[str, Node]]:
        """The direct children: components and structures, by attribute name (or key)."""
        for key, value in self.__dict__.items():
            if isinstance(value, Node) and value._parent is self:
                yield key, value

    def _walk(self) -> Iterator[Node]:
        yield self
        for _, child in self._children():
            yield from child._walk()

    def _adopt(self, key: str, child: Node) -> None:
        """Make ``child`` the child of this node under ``key``."""
        if child._parent is not None and not (child._parent is self and child._key == key):
            raise ValueError(
                f"{describe_type(child)} is already part of the app as {child.name}; a component can have "
                f"only one place in the tree (create a new one for {self.name}.{key})"
            )
        if child is self or child in self._ancestors():
            raise ValueError(f"cannot attach {child.name} under itself ({self.name}.{key})")
        observer = self._observer
        if observer is None:
            object.__setattr__(child, "_parent", self)
            object.__setattr__(child, "_key", key)
            return
        with observer.mutating():
            object.__setattr__(child, "_parent", self)
            object.__setattr__(child, "_key", key)
            for node in child._walk():
                object.__setattr__(node, "_observer", observer)
            observer.on_attach(self, child)

    def _release(self, child: Node, unlink: Callable[[], None]) -> None:
        """Take ``child`` out of the tree (``unlink`` removes it from this node); it keeps its name."""
        observer = self._observer
        with observer.mutating() if observer is not None else nullcontext():
            object.__setattr__(child, "_detached_name", child.name)
            unlink()
            object.__setattr__(child, "_parent", None)
            object.__setattr__(child, "_key", None)
            if observer is not None:
                observer.on_detach(self, child)

    def _ancestors(self) -> Iterator[Node]:
        node = self._parent
        while node is not None:
            yield node
            node = node._parent

    def _set_observer(self, observer: Observer | None) -> None:
        for node in self._walk():
            object.__setattr__(node, "_observer", observer)

    # Pickling: a component travels without its place in the tree or its observer (a work is pickled to a
    # Dask worker; the worker gives it the name it has in the app).
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for private in ("_parent", "_key", "_observer", "_sealed"):
            state.pop(private, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_parent", None)
        object.__setattr__(self, "_key", None)
        object.__setattr__(self, "_observer", None)
        object.__setattr__(self, "_sealed", True)
        for key, value in state.items():
            if isinstance(value, Node):
                object.__setattr__(value, "_parent", self)
                object.__setattr__(value, "_key", key)
            elif not key.startswith("_"):
                value = track(value, _AttributeTracker(self, key))
            object.__setattr__(self, key, value)


class Component(Node):
    """What flows and works share: public attributes are state, validated and reported on every set."""

    # How the fronts show it beyond stage, logs and progress (a sweep's table, a load test's figures).
    _view: ClassVar[ComponentView | None] = None

    # Public attributes the framework may add after __init__ (a work's server address: url, port ...).
    _undeclared_state: frozenset[str] = frozenset()
    _display_name: str | None = None

    @property
    def display_name(self) -> str:
        """The name the app view shows for this component: its attribute name unless one was given."""
        return self._display_name or (self._key if self._key is not None else self.name.rsplit(".", 1)[-1])

    @display_name.setter
    def display_name(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise TypeError(f"display_name of {self.name} must be a non-empty str, not {value!r}")
        object.__setattr__(self, "_display_name", value)

    def __setattr__(self, attribute: str, value: Any) -> None:
        if attribute.startswith("_") or isinstance(getattr(type(self), attribute, None), property):
            object.__setattr__(self, attribute, value)
            return
        value = self._prepare_child(attribute, value)
        if isinstance(value, Node):
            self._attach_child(attribute, value)
            return
        if isinstance(value, str) and value.startswith(LIT_PREFIX):
            value = lit_path(value)
        current = self.__dict__.get(attribute, MISSING)
        if current is MISSING and self._sealed and attribute not in self._undeclared_state:
            raise AttributeError(
                f"Cannot set attribute {attribute!r} on {self.name} ({describe_type(self)}): it was not "
                f"defined in __init__. Public attributes are the component's state and must be declared in "
                f"__init__ (e.g. self.{attribute} = None); use a private name (self._{attribute}) for anything "
                "that is not state."
            )
        if isinstance(current, Node):
            raise AttributeError(f"{self.name}.{attribute} is a child component and cannot be replaced")
        check_state_value(value, f"{self.name}.{attribute}")
        if isinstance(value, StateValue):
            value = value.attach(self, attribute)
        value = track(value, _AttributeTracker(self, attribute))
        observer = self._observer
        if observer is None:
            object.__setattr__(self, attribute, value)
            return
        with observer.mutating():
            object.__setattr__(self, attribute, value)
            if not _same(current, value):
                observer.on_set(self, attribute, value)

    def __delattr__(self, attribute: str) -> None:
        if not attribute.startswith("_"):
            raise AttributeError(f"Cannot delete state attribute {attribute!r} of {self.name}")
        object.__delattr__(self, attribute)

    def _prepare_child(self, attribute: str, value: Any) -> Any:
        """Turn a list or dict made only of components into a ``structures.List`` / ``Dict``."""
        from .structures import Dict, List

        if isinstance(value, (list, tuple)) and value and all(isinstance(v, Component) for v in value):
            return List(*value)
        if isinstance(value, dict) and value and all(isinstance(v, Component) for v in value.values()):
            return Dict(**value)
        return value

    def _attach_child(self, attribute: str, child: Node) -> None:
        current = self.__dict__.get(attribute, MISSING)
        if current is child:
            return
        if current is not MISSING and current is not None:  # None: a placeholder for a child made later
            raise AttributeError(
                f"{self.name}.{attribute} is already set; a child component cannot replace an attribute "
                "(use a structures.List or Dict to change the set of children)"
            )
        self._adopt(attribute, child)
        object.__setattr__(self, attribute, child)

    def _detach_child(self, attribute: str, child: Node) -> None:
        """Remove ``child`` (held as ``attribute``): the attribute becomes ``None``, a placeholder again."""
        self._release(child, lambda: object.__setattr__(self, attribute, None))

    def _apply_remote(self, attribute: str, value: Any) -> None:
        """Set an attribute from the other side (work ↔ flow) without reporting it back."""
        object.__setattr__(self, attribute, track(value, _AttributeTracker(self, attribute)))

    def _vars_json(self) -> dict[str, Any]:
        """The public attributes (not child components), in their JSON form (``state["vars"]``)."""
        return {
            key: to_json(value)
            for key, value in self.__dict__.items()
            if not key.startswith("_") and not isinstance(value, Node)
        }

    def _public_values(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in self.__dict__.items()
            if not key.startswith("_") and not isinstance(value, Node)
        }


def _same(old: Any, new: Any) -> bool:
    if old is new:
        return True
    if isinstance(new, StateValue):
        return False  # their equality (a Path's text) misses what they carry (where the file was made)
    try:
        return type(old) is type(new) and bool(old == new)
    except Exception:
        return False
