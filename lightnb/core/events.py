"""The engine's vocabulary: the events it handles and the instructions it returns.

Every input of :class:`~lightnb.core.engine.EngineState` is an :data:`Event`; every effect it wants on the
world (run a call somewhere, send values to a running work, stop a call, tell the views) is an
:data:`Instruction`, carried out by the shell (:mod:`lightnb.runtime.loop`). Both are typed, slotted
dataclasses: nothing is read by position.

Events name components by their dotted names (``root.train``), never by object, so a journal of events can
be replayed into a fresh tree of the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from .calls import WorkStageStatus

if TYPE_CHECKING:
    from .calls import Call
    from .work import LightningWork


class AppStage(str, Enum):
    NOT_STARTED = "not_started"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"
    STOPPING = "stopped"  # noqa: PIE796 - the reference's name for a cleanly ended app: an alias of STOPPED

    def __str__(self) -> str:
        return self.value


@dataclass
class Changes:
    """What one loop iteration changed, for views: component names whose state or log changed."""

    state: set[str] = field(default_factory=set)
    logs: set[str] = field(default_factory=set)
    stage: bool = False
    passes: int = 0

    def __bool__(self) -> bool:
        return bool(self.state or self.logs or self.stage or self.passes)


# -- what a running work reports (the entries of a batch, in the order the work made them) ------------------
@dataclass(frozen=True, slots=True)
class SetEntry:
    """The work set ``attribute`` to ``value`` (in-place changes of a list or dict too)."""

    attribute: str
    value: Any


@dataclass(frozen=True, slots=True)
class LogEntry:
    """The work printed ``text`` on ``stream`` (``stdout`` or ``stderr``)."""

    stream: str
    text: str


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """The call reached ``stage`` at ``timestamp`` (the worker's clock); ``message`` and ``reason`` on an end."""

    stage: WorkStageStatus
    message: str | None = None
    reason: str | None = None
    timestamp: float = 0.0


Entry = SetEntry | LogEntry | StatusEntry


# -- events -------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WorkBatch:
    """Changes, output and status updates of one running call, in the order the work made them. Batches of
    one execution arrive in order, each once; ``seq`` numbers them within that execution."""

    work_name: str
    call_id: str
    seq: int
    entries: tuple[Entry, ...]
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class CallLost:
    """A call's execution ended on the runtime's side. If the call has not reported a final status by the
    time the engine reads this, it ends with ``message``: stopped for ``reason="stop"``, failed otherwise
    (its worker died, it could not be started or sent, its final report was lost)."""

    work_name: str
    call_id: str
    message: str
    reason: str = "lost"


@dataclass(frozen=True, slots=True)
class RuntimeReady:
    """The executor is connected: calls can be sent."""

    description: str


@dataclass(frozen=True, slots=True)
class RuntimeFailed:
    """The executor could not start: the app fails with ``message``."""

    message: str


@dataclass(frozen=True, slots=True)
class Started:
    """The app starts: the engine becomes the observer of the tree and wants its first pass."""


@dataclass(frozen=True, slots=True)
class Advance:
    """The loop's turn: run a flow pass if anything changed (or a step was asked for), then ship what it
    produced. Only the loop thread sends it: flows never run on another thread."""


@dataclass(frozen=True, slots=True)
class StepRequested:
    """Run exactly one pass at the next :class:`Advance`, even when the app is paused."""


@dataclass(frozen=True, slots=True)
class EndRequested:
    """End the app (``app.stop()``, a signal, a flow's ``stop()`` from outside a pass)."""

    stage: AppStage
    message: str


@dataclass(frozen=True, slots=True)
class ValueSet:
    """A cell or a widget set ``component.attribute`` outside a flow pass (already set on the live tree)."""

    component: str
    attribute: str
    value: Any


@dataclass(frozen=True, slots=True)
class RunRequested:
    """A cell called ``work.run(*args, **kwargs)`` on a running app: the call is queued between passes."""

    work: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StopRequested:
    """``work.stop()`` from outside a flow pass (a cell, a stop button)."""

    work: str


@dataclass(frozen=True, slots=True)
class Touched:
    """``component`` changed in a way no set reports (its code was reloaded): the flow gets a pass."""

    component: str


@dataclass(frozen=True, slots=True)
class Tick:
    """The time a schedule asked for (:class:`WakeAt`) came: the flows get a pass."""


@dataclass(frozen=True, slots=True)
class Logged:
    """Output attributed to a component that no pass or work produced (e.g. the shell's own errors)."""

    component: str
    stream: str
    text: str


@dataclass(frozen=True, slots=True)
class WorksQuiet:
    """Stopping: the works had their grace period; calls that did not report an end are marked stopped."""


@dataclass(frozen=True, slots=True)
class Closed:
    """Stopping: the executor is closed; the app takes its final stage."""


Event = (WorkBatch | CallLost | RuntimeReady | RuntimeFailed | Started | Advance | StepRequested | EndRequested
         | ValueSet | RunRequested | StopRequested | Touched | Tick | Logged | WorksQuiet | Closed)


# -- instructions -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Submit:
    """Pack ``work`` with the call's arguments and start executing the call (the shell pickles: a work that
    cannot be pickled comes back as a :class:`CallLost` with reason ``unpicklable``)."""

    work: LightningWork
    call: Call
    resources: dict[str, float]
    preferred_worker: str | None = None


@dataclass(frozen=True, slots=True)
class Push:
    """Set ``values`` on the running call ``call_id`` of ``work_name`` (flow → work), ``seq`` orders them."""

    work_name: str
    call_id: str
    seq: int
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StopCall:
    """Ask a call to stop where it runs (``started``) or keep it from starting."""

    work_name: str
    call_id: str
    started: bool


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the views what changed."""

    changes: Changes


@dataclass(frozen=True, slots=True)
class Again:
    """The state changed during the pass: the loop should advance again (a flow reacting to itself)."""


@dataclass(frozen=True, slots=True)
class WakeAt:
    """Hand the engine a :class:`Tick` at ``when`` (a time of the clock the shell gives ``handle``), unless a
    later ``WakeAt`` replaces it; ``None`` cancels it. For ``flow.schedule``: an idle app still wakes on time."""

    when: float | None


@dataclass(frozen=True, slots=True)
class Ending:
    """The app is ending: stop calls were sent; wait (a grace period) for the works to report, then send
    :class:`WorksQuiet`, close the executor and send :class:`Closed`."""

    stage: AppStage
    message: str


@dataclass(frozen=True, slots=True)
class Ended:
    """The app has ended with ``stage``."""

    stage: AppStage
    message: str


Instruction = Submit | Push | StopCall | Notify | Again | WakeAt | Ending | Ended
