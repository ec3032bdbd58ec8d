"""``LightningFlow``: orchestration code, stepped by the app's event loop in the kernel."""

from __future__ import annotations

import functools
import itertools
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .component import Component, Node
from .schedule import Schedules
from .structures import Structure
from .values import describe_type

if TYPE_CHECKING:
    from datetime import datetime

    from .work import LightningWork


# With no app there are no passes: each call counts as one.
_DETACHED_PASSES = itertools.count()


class AppEnd(BaseException):
    """Raised by ``flow.stop()`` / ``flow.fail()`` to end the app (a ``BaseException`` so that a flow's
    ``except Exception`` does not swallow it)."""

    def __init__(self, message: str, failed: bool) -> None:
        super().__init__(message)
        self.message = message
        self.failed = failed


class LightningFlow(Component):
    """Orchestration: ``run()`` is called by the app's loop whenever the app's state changed.

    Flows own works and other flows (set as attributes, or held in ``structures.List`` / ``Dict``); the
    root flow is given to ``LightningApp``. ``run()`` should be quick and idempotent: it reacts to state
    (``if self.train.has_succeeded: ...``) rather than waiting.

    Example
    -------
    >>> class Root(LightningFlow):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.train = TrainWork()
    ...     def run(self):
    ...         self.train.run(lr=0.01)
    ...         if self.train.has_succeeded:
    ...             self.stop("trained")
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is not None and not hasattr(run, "__lightnb_raw__"):
            cls.run = _attributed(run)  # type: ignore[method-assign]

    def run(self, *args: Any, **kwargs: Any) -> None:
        """Override with the flow's logic; the app calls it on every pass."""
        raise NotImplementedError(f"{describe_type(self)} must define run()")

    def stop(self, end_msg: str = "") -> None:
        """End the app cleanly (stage ``stopped``); every work is stopped."""
        self._end(end_msg, failed=False)

    def fail(self, end_msg: str = "") -> None:
        """End the app as failed (stage ``failed``); ``app.wait()`` raises ``AppFailed`` with the message."""
        self._end(end_msg, failed=True)

    def _end(self, message: str, failed: bool) -> None:
        observer = self._observer
        if observer is not None:
            observer.on_end(self, message, failed)
            return
        raise AppEnd(message, failed)

    def schedule(self, cron_pattern: str, start_time: datetime | None = None, user_key: str | None = None) -> bool:
        """Whether the schedule ``cron_pattern`` fires in this pass, as in the reference: ``True`` on the first
        pass that reaches the call (unless ``start_time`` is later), then in the pass run when the cron
        expression fires — the app wakes for it, with no polling.

        ``cron_pattern``: five cron fields (``"*/5 * * * *"``: every 5 minutes; an optional sixth gives
        seconds) or ``"hourly"``, ``"daily"``, ``"weekly"``, ``"monthly"``, ``"yearly"``; the machine's local
        time. Each call site is its own schedule (``user_key`` tells apart several at one site).

        >>> class Nightly(LightningFlow):
        ...     def run(self):
        ...         if self.schedule("daily"):
        ...             self.pipelines.append(Pipeline())
        """
        caller = sys._getframe(1)
        key = f"{self.name}:{caller.f_code.co_filename}:{caller.f_lineno}:{user_key or ''}:{cron_pattern}"
        observer = self._observer
        if observer is not None:
            return observer.on_schedule(self, key, cron_pattern, start_time)
        schedules = self.__dict__.get("_schedules")
        if schedules is None:
            schedules = Schedules()
            object.__setattr__(self, "_schedules", schedules)
        return schedules.check(key, cron_pattern, start_time, time.time(), next(_DETACHED_PASSES))

    def configure_layout(self) -> Any:
        """The flow's tabs in the app view: a list of ``{"name": ..., "content": component or URL}``.

        The default shows one tab per child flow and one per work that has a ``url``.
        """
        tabs: list[dict[str, Any]] = []
        for _, child in self._children():
            if isinstance(child, LightningFlow):
                tabs.append({"name": child.display_name, "content": child})
            elif isinstance(child, Structure):
                continue
            elif child.__dict__.get("url") is not None:  # a work that serves (its url is state)
                tabs.append({"name": child.display_name, "content": child})
        return tabs

    # -- the tree -----------------------------------------------------------------------------------------
    @property
    def flows(self) -> dict[str, LightningFlow]:
        """Every descendant flow, by dotted name. In the reference's order: the child flows by attribute name
        (each followed by its own descendants), then those of the structures (``List`` / ``Dict``)."""
        flows: dict[str, LightningFlow] = {}
        children = sorted(self._children(), key=_by_key)
        for _, child in children:
            if isinstance(child, LightningFlow):
                flows[child.name] = child
                flows.update(child.flows)
        for _, child in children:
            if isinstance(child, Structure):
                flows.update(_structure_flows(child))
        return flows

    def works(self, recurse: bool = True) -> list[LightningWork]:
        """The works below this flow (with ``recurse=False``, only its own). In the reference's order: its own
        works by attribute name, then those of its child flows (by name), then those of its structures."""
        from .work import LightningWork

        children = sorted(self._children(), key=_by_key)
        works = [child for _, child in children if isinstance(child, LightningWork)]
        if not recurse:
            return works
        for _, child in children:
            if isinstance(child, LightningFlow):
                works.extend(child.works(recurse=True))
        for _, child in children:
            if isinstance(child, Structure):
                works.extend(_structure_works(child))
        return works

    def named_works(self, recurse: bool = True) -> list[tuple[str, LightningWork]]:
        return [(work.name, work) for work in self.works(recurse)]

    @property
    def state(self) -> dict[str, Any]:
        """``{"vars", "calls", "flows", "works", "structures"}``, recursively (a fresh copy each time)."""
        return self._state_tree(calls=True)

    @property
    def state_vars(self) -> dict[str, Any]:
        """The state without the calls, as in the reference framework: ``{"vars", "flows", "works",
        "structures"}``, recursively (a fresh copy each time)."""
        return self._state_tree(calls=False)

    def _state_tree(self, calls: bool) -> dict[str, Any]:
        from .work import LightningWork

        state: dict[str, Any] = {"vars": self._vars_json(), **({"calls": {}} if calls else {}), "flows": {},
                                 "works": {}, "structures": {}}
        for key, child in self._children():
            group = ("flows" if isinstance(child, LightningFlow) else "works" if isinstance(child, LightningWork)
                     else "structures" if isinstance(child, Structure) else None)
            if group is not None:
                state[group][key] = child.state if calls else child.state_vars
        return state

    def __repr__(self) -> str:
        return f"<{describe_type(self)} {self.name}>"


def _by_key(item: tuple[str, Node]) -> str:
    return item[0]


def _structure_flows(structure: Structure) -> dict[str, LightningFlow]:
    flows: dict[str, LightningFlow] = {}
    for _, item in structure._items():
        if isinstance(item, LightningFlow):
            flows[item.name] = item
            flows.update(item.flows)
    return flows


def _structure_works(structure: Structure) -> list[LightningWork]:
    from .work import LightningWork

    items = [item for _, item in structure._items()]
    works = [item for item in items if isinstance(item, LightningWork)]
    for item in items:
        if isinstance(item, LightningFlow):
            works.extend(item.works(recurse=True))
    return works


class SlowFlowWarning(UserWarning):
    """A flow's ``run()`` took long enough to hold up the app (the loop runs one pass at a time)."""


# One pass of a flow's run() longer than this (seconds) is warned about, once per flow.
SLOW_FLOW_SECONDS = 1.0


class _SlowRuns(threading.local):
    last = float("-inf")  # when (perf_counter) a slow run() of this thread's app was last found


_slow = _SlowRuns()


def slow_flow_message(name: str, seconds: float) -> str:
    return (f"{name}.run() took {seconds:.2f} s (more than {SLOW_FLOW_SECONDS:g} s): the app's loop waits for it, "
            "so works' updates, stops and the view are held up meanwhile. Keep run() quick and move long or "
            "blocking code into a LightningWork.")


def _slow_run(flow: LightningFlow, started: float, seconds: float) -> None:
    """One run() of ``flow`` took more than :data:`SLOW_FLOW_SECONDS`: warn, once per flow, unless a flow it
    called was found slow during this run (only the innermost slow flow is named)."""
    nested_was_slow = _slow.last >= started
    _slow.last = time.perf_counter()
    if nested_was_slow or flow.__dict__.get("_lightnb_warned_slow", False):
        return
    object.__setattr__(flow, "_lightnb_warned_slow", True)
    warnings.warn(slow_flow_message(flow.name, seconds), SlowFlowWarning, stacklevel=3)


def _attributed(run: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a flow's ``run`` so that what it prints is attributed to that flow's log."""

    @functools.wraps(run)
    def attributed(self: LightningFlow, *args: Any, **kwargs: Any) -> Any:
        observer = self._observer
        if observer is None:
            return run(self, *args, **kwargs)
        observer.enter_flow(self)
        started = time.perf_counter()
        try:
            return run(self, *args, **kwargs)
        except Exception as error:
            if not hasattr(error, "_lightnb_flow"):  # the innermost flow whose run() raised it
                try:
                    error._lightnb_flow = self.name  # type: ignore[attr-defined]
                except AttributeError:
                    pass
            raise
        finally:
            elapsed = time.perf_counter() - started
            if elapsed > SLOW_FLOW_SECONDS:  # said inside the flow's log (before exit_flow)
                _slow_run(self, started, elapsed)
            observer.exit_flow(self)

    attributed.__lightnb_raw__ = run  # type: ignore[attr-defined]
    return attributed


class BadComponentName(KeyError, ValueError):
    """A component name that is not a dotted path from ``root``. A ``ValueError`` as in the reference
    framework (and a ``KeyError``, as lightnb raised before)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NoSuchComponent(KeyError, AttributeError):
    """No component has that name. An ``AttributeError`` as in the reference framework (and a ``KeyError``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def find_component(root: Node, name: str) -> Node:
    """The component named ``name`` (``root.a.b``) under ``root``; :class:`BadComponentName` for a name not
    starting with ``root``, :class:`NoSuchComponent` naming the missing part otherwise."""
    if not isinstance(name, str):
        raise BadComponentName(f"component names are strings such as 'root.train', not {describe_type(name)}")
    parts = name.split(".")
    if parts[0] != "root" or not all(parts):
        raise BadComponentName(f"component names are dotted paths starting with 'root' (e.g. 'root.train'), "
                               f"not {name!r}")
    node = root
    for depth, part in enumerate(parts[1:], start=1):
        children = dict(node._children())
        if part not in children:
            known = ", ".join(f"{node.name}.{k}" for k in children) or "none"
            raise NoSuchComponent(
                f"no component {'.'.join(parts[:depth + 1])!r} (children of {node.name}: {known})")
        node = children[part]
    return node
