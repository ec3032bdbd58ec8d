"""What a component's state may hold, and the containers that report in-place changes.

A component's state is its public attributes. Their values must be JSON-serializable, or be one of the
special :class:`StateValue` types (``Path``, ``Drive``, ``Payload``, ``CloudCompute``). Lists and dicts are
stored as :class:`TrackedList` / :class:`TrackedDict`, which call back on every in-place mutation, so
``self.metrics.append(x)`` in a work reaches the flow the same way ``self.x = 1`` does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, SupportsIndex

_SCALARS = (str, int, float, bool, type(None))


class StateValue:
    """Base of the non-JSON values a component may hold as state (``Path``, ``Drive``, ``Payload`` ...).

    Subclasses give a JSON form of themselves for ``component.state`` and may take ownership when they are
    attached to a component (a ``Drive`` records which component it belongs to).
    """

    def to_state(self) -> Any:
        """The JSON form of this value, as shown in ``component.state``."""
        raise NotImplementedError

    def attach(self, component: Any, attribute: str) -> StateValue:
        """Called when the value is set as ``component.attribute``; returns the value to store."""
        return self

    def before_call(self, work: Any, as_argument: bool) -> None:
        """Called where a work executes, before its ``run()``: for each such value among the call's arguments
        (``as_argument=True``) and the work's attributes. A ``Path`` fetches its file here."""

    def after_success(self, work: Any) -> None:
        """Called where a work executes, after its ``run()`` succeeded, for each such attribute of the work
        (a ``Path`` keeps its file in the app's storage here)."""


LIT_PREFIX = "lit://"
_lit_path_factory: Callable[[str], Any] | None = None


def register_lit_path(factory: Callable[[str], Any]) -> None:
    """How a ``"lit://name"`` string set as state becomes a Path (registered by the storage layer)."""
    global _lit_path_factory
    _lit_path_factory = factory


def lit_path(text: str) -> Any:
    """``"lit://name"`` as the storage layer's ``Path`` (the string itself if no storage layer is loaded)."""
    return _lit_path_factory(text) if _lit_path_factory is not None else text


def describe_type(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


class StateValueError(TypeError, AttributeError):
    """A value that cannot be part of a component's state. Both a ``TypeError`` and, as in the reference
    framework, an ``AttributeError``: an ``except`` written for either catches it."""


def check_state_value(value: Any, where: str) -> None:
    """Raise :class:`StateValueError` naming ``where`` if ``value`` cannot be part of a component's state."""
    problem = _find_problem(value)
    if problem is not None:
        path, bad = problem
        inner = f" (at {where}{path})" if path else ""
        raise StateValueError(
            f"{where} cannot hold a value of type {describe_type(bad)}{inner}: state must be JSON-serializable "
            "(str, int, float, bool, None, lists and dicts of them) or a lightnb Path, Drive, Payload or "
            f"CloudCompute. Keep other objects in a private attribute (a name starting with '_'), or wrap a "
            "value to hand to another work in lightnb.Payload."
        )


def _find_problem(value: Any, path: str = "") -> tuple[str, Any] | None:
    if isinstance(value, (*_SCALARS, StateValue)):
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = _find_problem(item, f"{path}[{index}]")
            if problem is not None:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, _SCALARS):
                return f"{path} key", key
            problem = _find_problem(item, f"{path}[{key!r}]")
            if problem is not None:
                return problem
        return None
    return path, value


def to_json(value: Any) -> Any:
    """The JSON form of a state value: containers copied, ``StateValue``\\s replaced by their state form."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, StateValue):
        return value.to_state()
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value


def plain(value: Any) -> Any:
    """A deep copy of ``value`` with tracked containers turned back into plain lists and dicts."""
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, Counter):
        return Counter({key: plain(item) for key, item in value.items()})
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(plain(item) for item in value)
    return value


class Tracker:
    """Where a tracked container reports: it checks values put into it and hears of every change."""

    __slots__ = ()

    def check(self, value: Any) -> None:
        return None

    def changed(self) -> None:
        return None


_UNTRACKED = Tracker()


def track(value: Any, tracker: Tracker) -> Any:
    """Wrap lists and dicts (recursively) so that mutating them reports to ``tracker``."""
    if isinstance(value, list):
        return TrackedList(value, tracker)
    if isinstance(value, Counter):
        return TrackedCounter(value, tracker)
    if isinstance(value, dict):
        return TrackedDict(value, tracker)
    return value


class TrackedList(list):
    """A ``list`` that reports to its tracker after each in-place mutation. Pickles as a plain list."""

    __slots__ = ("_tracker",)

    def __init__(self, items: Iterable[Any] = (), tracker: Tracker = _UNTRACKED) -> None:
        self._tracker = tracker
        super().__init__(track(item, tracker) for item in items)

    def __reduce__(self) -> tuple[Any, ...]:
        return list, (plain(self),)

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return plain(self)

    def _wrap(self, item: Any) -> Any:
        self._tracker.check(item)
        return track(item, self._tracker)

    def __setitem__(self, index: Any, item: Any) -> None:
        if isinstance(index, slice):
            super().__setitem__(index, [self._wrap(x) for x in item])
        else:
            super().__setitem__(index, self._wrap(item))
        self._tracker.changed()

    def __delitem__(self, index: Any) -> None:
        super().__delitem__(index)
        self._tracker.changed()

    def __iadd__(self, items: Iterable[Any]) -> TrackedList:  # type: ignore[override]
        self.extend(items)
        return self

    def __imul__(self, count: SupportsIndex) -> TrackedList:  # type: ignore[override]
        super().__imul__(count)
        self._tracker.changed()
        return self

    def append(self, item: Any) -> None:
        super().append(self._wrap(item))
        self._tracker.changed()

    def extend(self, items: Iterable[Any]) -> None:
        super().extend(self._wrap(x) for x in items)
        self._tracker.changed()

    def insert(self, index: SupportsIndex, item: Any) -> None:
        super().insert(index, self._wrap(item))
        self._tracker.changed()

    def pop(self, index: SupportsIndex = -1) -> Any:
        item = super().pop(index)
        self._tracker.changed()
        return item

    def remove(self, item: Any) -> None:
        super().remove(item)
        self._tracker.changed()

    def clear(self) -> None:
        super().clear()
        self._tracker.changed()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        super().sort(*args, **kwargs)
        self._tracker.changed()

    def reverse(self) -> None:
        super().reverse()
        self._tracker.changed()


class _TrackedRemovals:
    """What a tracked dict and a tracked Counter share: removals that report to the tracker."""

    __slots__ = ()
    _tracker: Tracker

    def pop(self, key: Any, *default: Any) -> Any:
        present = key in self
        item = super().pop(key, *default)  # type: ignore[misc]
        if present:
            self._tracker.changed()
        return item

    def popitem(self) -> tuple[Any, Any]:
        item = super().popitem()  # type: ignore[misc]
        self._tracker.changed()
        return item

    def clear(self) -> None:
        super().clear()  # type: ignore[misc]
        self._tracker.changed()


class TrackedDict(_TrackedRemovals, dict):
    """A ``dict`` that reports to its tracker after each in-place mutation. Pickles as a plain dict."""

    __slots__ = ("_tracker",)

    def __init__(self, items: Any = (), tracker: Tracker = _UNTRACKED) -> None:
        self._tracker = tracker
        super().__init__((key, track(item, tracker)) for key, item in dict(items).items())

    def _wrap(self, key: Any, item: Any) -> Any:
        self._tracker.check({key: item})
        return track(item, self._tracker)

    def __reduce__(self) -> tuple[Any, ...]:
        return dict, (plain(self),)

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        return plain(self)

    def __setitem__(self, key: Any, item: Any) -> None:
        super().__setitem__(key, self._wrap(key, item))
        self._tracker.changed()

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._tracker.changed()

    def __ior__(self, other: Any) -> TrackedDict:  # type: ignore[override]
        self.update(other)
        return self

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, item in dict(*args, **kwargs).items():
            super().__setitem__(key, self._wrap(key, item))
        self._tracker.changed()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key in self:
            return self[key]
        super().__setitem__(key, self._wrap(key, default))
        self._tracker.changed()
        return self[key]



class TrackedCounter(_TrackedRemovals, Counter):  # type: ignore[type-arg]
    """A ``collections.Counter`` that reports to its tracker after each in-place change (a Counter kept in state
    stays a Counter, as in the reference framework). Pickles as a plain ``Counter``."""

    __slots__ = ("_tracker",)

    def __init__(self, items: Any = (), tracker: Tracker = _UNTRACKED) -> None:
        self._tracker = _UNTRACKED  # no reports while filling
        super().__init__()
        for key, item in dict(items).items():
            super().__setitem__(key, item)
        self._tracker = tracker

    def __reduce__(self) -> tuple[Any, ...]:
        return Counter, (dict(self),)

    def __copy__(self) -> Counter[Any]:
        return Counter(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> Counter[Any]:
        return plain(self)

    def __setitem__(self, key: Any, item: Any) -> None:
        self._tracker.check({key: item})
        super().__setitem__(key, item)
        self._tracker.changed()

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._tracker.changed()

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(*args, **kwargs)
        self._tracker.changed()

    def subtract(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().subtract(*args, **kwargs)
        self._tracker.changed()


    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key in self:
            return self[key]
        self[key] = default
        return default
