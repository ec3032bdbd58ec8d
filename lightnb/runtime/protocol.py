"""The small protocol between the app's event loop and whatever executes work calls.

The loop hands an :class:`Executor` a :class:`CallSpec` to run, values to push into a running work, and stop
requests; the executor reports back :class:`RuntimeEvent`\\s through the ``emit`` callable it was started
with. Two executors implement it: :mod:`lightnb.runtime.dask` (the real one: worker processes of a Dask
cluster) and :mod:`lightnb.runtime.inprocess` (threads of this process, for fast unit tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

# One entry of a batch a running work sends: ("set", attribute, value) | ("log", stream, text) |
# ("status", stage, message, reason, timestamp).
Entry = tuple[Any, ...]


@dataclass(frozen=True)
class CallSpec:
    """One execution of a work call, ready to ship: the pickled work, arguments and where to report."""

    app_id: str
    work_name: str
    call_id: str
    payload: bytes
    resources: dict[str, float] = field(default_factory=dict)
    # Where the work would like to run again (its previous worker): it keeps its private attributes there.
    preferred_worker: str | None = None


@dataclass(frozen=True)
class WorkBatch:
    """Changes, log output and status updates of one running call, in the order the work made them.
    Batches of one execution arrive in order, each once; ``seq`` numbers them within that execution."""

    work_name: str
    call_id: str
    seq: int
    entries: list[Entry]
    worker: str | None = None


@dataclass(frozen=True)
class CallLost:
    """A call's execution ended on the runtime's side. If the call has not reported a final status by the
    time the loop reads this, it ends with ``message``: stopped for ``reason="stop"``, failed otherwise
    (its worker died, it could not be started, its final report was lost)."""

    work_name: str
    call_id: str
    message: str
    reason: str = "lost"


@dataclass(frozen=True)
class RuntimeReady:
    description: str


@dataclass(frozen=True)
class RuntimeFailed:
    message: str


RuntimeEvent = WorkBatch | CallLost | RuntimeReady | RuntimeFailed
Emit = Callable[[RuntimeEvent], None]


class Executor(Protocol):
    """Runs work calls somewhere and streams what they do back to the loop."""

    def start(self, emit: Emit) -> None:
        """Connect (or start the cluster); afterwards report events through ``emit`` from any thread."""

    def submit(self, spec: CallSpec) -> None:
        """Start executing a call; never blocks on the call itself."""

    def push(self, work_name: str, call_id: str, values: dict[str, Any]) -> None:
        """Set attributes on a running work (flow → work), in order."""

    def stop(self, work_name: str, call_id: str, started: bool) -> None:
        """Ask a call to stop; it reports ``stopped`` when it has. ``started``: the call reported that it
        runs (it stops where it runs, running ``on_exit``); otherwise it may still be kept from starting."""

    def close(self) -> None:
        """Stop everything still running and release what the executor created (its cluster)."""

    @property
    def description(self) -> str: ...
