"""The work-call decision table: a small, pure state machine, one per work.

``work.run(*args, **kwargs)`` from a flow becomes :meth:`CallTable.request`, which answers whether the call
is dispatched and whether the calling flow pass must stop there. Runtime events (the call started, finished,
was stopped) come back through :meth:`CallTable.on_running` and :meth:`CallTable.on_finished`. Nothing here
does I/O, so the whole table is unit-tested synchronously.

The table is the reference framework's, with its dead end fixed: a failed or stopped call counts as finished,
so a blocking call that failed no longer stalls its flow forever.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from .values import StateValue


class WorkStageStatus(str, Enum):
    """The stage of a work's latest call. A ``str`` enum: ``status.stage == "running"`` holds."""

    NOT_STARTED = "not_started"
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value

    @property
    def is_finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({WorkStageStatus.SUCCEEDED, WorkStageStatus.FAILED, WorkStageStatus.STOPPED})


@dataclass(frozen=True)
class WorkStatus:
    """A work's status: the stage of its latest call, when it got there, and why (on failure or stop)."""

    stage: WorkStageStatus
    timestamp: float = 0.0
    message: str | None = None
    reason: str | None = None

    def to_state(self) -> dict[str, Any]:
        return {"stage": self.stage.value, "timestamp": self.timestamp, "message": self.message,
                "reason": self.reason}


NOT_STARTED = WorkStatus(WorkStageStatus.NOT_STARTED)


@dataclass
class Call:
    """One distinct call of a work (one argument hash). Re-running it bumps ``attempt``."""

    call_hash: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    stage: WorkStageStatus = WorkStageStatus.PENDING
    timestamp: float = 0.0
    message: str | None = None
    reason: str | None = None
    attempt: int = 1
    result: Any = None
    stop_requested: bool = False  # work.stop() while it was pending or running: it ends as stopped

    @property
    def call_id(self) -> str:
        """Identifies one execution: events of an earlier attempt never touch a later one."""
        return f"{self.call_hash}.{self.attempt}"

    @property
    def is_finished(self) -> bool:
        return self.stage in _FINISHED

    @property
    def status(self) -> WorkStatus:
        return WorkStatus(self.stage, self.timestamp, self.message, self.reason)


class Decision(NamedTuple):
    """What a ``work.run(...)`` from a flow does: queue an execution, and/or end the flow pass here."""

    dispatch: bool
    block: bool


_NO_DISPATCH = {True: Decision(dispatch=False, block=False), False: Decision(dispatch=False, block=True)}


@dataclass
class CallTable:
    """The calls of one work, their queue (a work executes one call at a time, in order) and its status."""

    calls: dict[str, Call] = field(default_factory=dict)
    latest: str | None = None
    active: Call | None = None
    queue: deque[Call] = field(default_factory=deque)
    stopped_unstarted: WorkStatus | None = None  # work.stop() before the work's first call

    def request(self, call_hash: str, args: tuple[Any, ...], kwargs: dict[str, Any], *, cache_calls: bool,
                parallel: bool, now: float) -> Decision:
        """Apply the decision table to a call from the flow."""
        call = self.calls.get(call_hash)
        if call is not None and self.latest == call_hash and call.stage not in _FINISHED:
            # The common case of a flow pass: the call it asked for last is still pending or running.
            return _NO_DISPATCH[parallel]
        dispatch = False
        if call is None:
            call = Call(call_hash, args, kwargs, timestamp=now)
            self.calls[call_hash] = call
            dispatch = True
        elif call.is_finished and not cache_calls:
            call.attempt += 1
            call.stage, call.timestamp, call.message, call.reason = WorkStageStatus.PENDING, now, None, None
            call.stop_requested = False
            call.args, call.kwargs = args, kwargs
            dispatch = True
        if dispatch:
            self.queue.append(call)
        self.latest = call_hash
        return Decision(dispatch=dispatch, block=not parallel and not call.is_finished)

    def take_next(self) -> Call | None:
        """The next queued call to execute, if the work is free; it becomes the active call."""
        if self.active is not None or not self.queue:
            return None
        self.active = self.queue.popleft()
        return self.active

    def find(self, call_id: str) -> Call | None:
        call = self.calls.get(call_id.rpartition(".")[0])
        return call if call is not None and call.call_id == call_id else None

    def on_running(self, call_id: str, now: float) -> bool:
        call = self.find(call_id)
        if call is None or call.stage is not WorkStageStatus.PENDING:
            return False
        call.stage, call.timestamp = WorkStageStatus.RUNNING, now
        return True

    def on_finished(self, call_id: str, stage: WorkStageStatus, now: float, message: str | None = None,
                    reason: str | None = None) -> bool:
        """Record the end of an execution; ignored if that execution already ended (first report wins)."""
        if not stage.is_finished:
            raise ValueError(f"{stage!r} is not a final stage")
        call = self.find(call_id)
        if call is None or call.is_finished:
            return False
        if call.stop_requested and stage is not WorkStageStatus.STOPPED:
            # It finished before the stop reached it: work.stop() still leaves the work stopped.
            message = f"stopped after the call had {stage.value}" + (f"; it had failed with:\n{message}"
                                                                     if message else "")
            stage, reason = WorkStageStatus.STOPPED, "stop"
        call.stage, call.timestamp, call.message, call.reason = stage, now, message, reason
        if self.active is call:
            self.active = None
        elif call in self.queue:
            self.queue.remove(call)
        return True

    def stop_all(self, now: float, message: str = "stopped") -> tuple[Call | None, list[Call]]:
        """Stop the work: queued calls end at once; returns (the running call to interrupt, the ended ones)."""
        ended = []
        while self.queue:
            call = self.queue.popleft()
            call.stage, call.timestamp, call.message, call.reason = WorkStageStatus.STOPPED, now, message, "stop"
            ended.append(call)
        return self.active, ended

    def stop(self, now: float) -> tuple[Call | None, bool]:
        """``work.stop()``: afterwards the work is ``stopped``, whatever it was doing.

        Queued calls end at once; a pending or running call is returned, to interrupt where it runs (it
        reports ``stopped`` when it has); a work whose latest call had already finished (succeeded or failed),
        or that was never called, is marked ``stopped`` now, so a flow waiting for ``has_stopped`` goes on.
        Returns (the call to interrupt, whether the status changed here).
        """
        active, ended = self.stop_all(now)
        if active is not None:
            active.stop_requested = True
            return active, bool(ended)
        if self.latest is None:
            changed = self.stopped_unstarted is None
            self.stopped_unstarted = WorkStatus(WorkStageStatus.STOPPED, now, "stopped before it was called",
                                                "stop")
            return None, changed
        latest = self.calls[self.latest]
        if latest.stage is WorkStageStatus.STOPPED:
            return None, bool(ended)
        latest.message = f"stopped after the call had {latest.stage.value}" + (
            f"; it had failed with:\n{latest.message}" if latest.message else "")
        latest.stage, latest.timestamp, latest.reason = WorkStageStatus.STOPPED, now, "stop"
        return None, True

    @property
    def status(self) -> WorkStatus:
        """The status of the latest call."""
        if self.latest is None:
            return self.stopped_unstarted or NOT_STARTED
        return self.calls[self.latest].status

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"latest_call_hash": self.latest}
        for call_hash, call in self.calls.items():
            state[call_hash] = {**call.status.to_state(), "attempt": call.attempt}
        return state


def call_hash(args: tuple[Any, ...], kwargs: dict[str, Any],
              fallback: Callable[[Any], bytes] | None = None) -> str:
    """A stable hash of a call's arguments: equal arguments give the same hash in every process.

    JSON-like values hash by their canonical JSON (so ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` are the
    same call); lightnb state values by their state form; anything else by ``fallback(value)`` (its pickle).
    """

    def default(value: Any) -> Any:
        if isinstance(value, StateValue):
            return {"__lightnb__": type(value).__name__, "state": value.to_state()}
        if isinstance(value, (set, frozenset)):
            return sorted(value, key=repr)
        if fallback is None:
            return {"__repr__": repr(value)}
        return {"__pickle__": hashlib.sha1(fallback(value)).hexdigest()}

    text = json.dumps({"args": list(args), "kwargs": kwargs}, sort_keys=True, default=default)
    return hashlib.sha1(text.encode()).hexdigest()[:12]
