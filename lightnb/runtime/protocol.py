"""The small interface between the app's loop and whatever executes work calls.

The loop hands an :class:`Executor` a :class:`CallSpec` to run, values to push into a running work, and stop
requests; the executor reports back runtime events (:class:`~lightnb.core.events.WorkBatch`,
:class:`~lightnb.core.events.CallLost`, :class:`~lightnb.core.events.RuntimeReady`,
:class:`~lightnb.core.events.RuntimeFailed`) through the ``emit`` callable it was started with. Two
executors implement it: :mod:`lightnb.runtime.dask` (the real one: worker processes of a Dask cluster) and
:mod:`lightnb.runtime.inprocess` (threads of this process, for tests of the core alone).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.events import CallLost, Logged, RuntimeFailed, RuntimeReady, WorkBatch

# One entry of a batch as a running work sends it (the wire form; the loop reads typed entries):
# ("set", attribute, value) | ("log", stream, text) | ("status", stage, message, reason, timestamp).
Entry = tuple[Any, ...]

RuntimeEvent = WorkBatch | CallLost | RuntimeReady | RuntimeFailed | Logged
Emit = Callable[[RuntimeEvent], None]

__all__ = ["CallLost", "CallSpec", "Emit", "Entry", "Executor", "RuntimeEvent", "RuntimeFailed", "RuntimeReady",
           "WorkBatch"]


@dataclass(frozen=True, slots=True)
class CallSpec:
    """One execution of a work call, ready to ship: the pickled work, arguments and where to report."""

    app_id: str
    work_name: str
    call_id: str
    payload: bytes
    resources: dict[str, float] = field(default_factory=dict)
    # Where the work would like to run again (its previous worker): it keeps its private attributes there.
    preferred_worker: str | None = None


class Executor(ABC):
    """Runs work calls somewhere and streams what they do back to the loop."""

    #: Connect in :meth:`start` before the app starts (an explicit address fails ``app.start()`` at once),
    #: rather than in the background while the flow already steps.
    connects_eagerly: bool = True

    @abstractmethod
    def start(self, emit: Emit) -> None:
        """Connect (or start the cluster); afterwards report events through ``emit`` from any thread."""

    @abstractmethod
    def submit(self, spec: CallSpec) -> None:
        """Start executing a call; never blocks on the call itself."""

    def submit_many(self, specs: list[CallSpec]) -> None:
        """Start executing several calls (those one iteration of the loop asked for), in this order."""
        for spec in specs:
            self.submit(spec)

    @abstractmethod
    def push(self, work_name: str, call_id: str, values: dict[str, Any]) -> None:
        """Set attributes on a running work (flow → work), in order."""

    @abstractmethod
    def stop(self, work_name: str, call_id: str, started: bool) -> None:
        """Ask a call to stop; it reports ``stopped`` when it has. ``started``: the call reported that it
        runs (it stops where it runs, running ``on_exit``); otherwise it may still be kept from starting."""

    @abstractmethod
    def close(self) -> None:
        """Stop everything still running and release what the executor created (its cluster)."""

    @property
    @abstractmethod
    def description(self) -> str:
        """Where calls run, in words (for views)."""

    def can_reattach(self, work_name: str, call_id: str) -> bool:
        """Whether the call ``call_id`` of ``work_name``, sent by an earlier process of this app, still runs
        here (a resumed app then follows it instead of running it again). Executors that die with their
        process (threads, an embedded cluster) have nothing to re-attach to."""
        return False

    def reattach(self, work_name: str, call_id: str) -> None:
        """Follow a call found by :meth:`can_reattach`: its reports reach the app as if it had sent it."""
        raise NotImplementedError(f"{type(self).__name__} cannot re-attach to running calls")
