"""The app's engine: a pure state machine, events in and instructions out.

:meth:`EngineState.handle` takes typed events (:mod:`lightnb.core.events`) and the time, changes the state
(the component tree, the works' call tables, logs, the app's stage) and returns typed instructions for the
shell to carry out: calls to execute, values to push to running works, calls to stop, views to tell. It
reads no clock, starts no thread, does no I/O and pickles nothing; the thin shell around it
(:class:`lightnb.runtime.loop.AppLoop`) owns the loop thread, the clock, the executor and the listeners.

Flow passes run inside :meth:`~EngineState.handle` (for an :class:`~lightnb.core.events.Advance`): a flow's
``run()`` reads and sets state, and that is all the engine needs of it. The engine is the observer of every
flow-side component (:class:`~lightnb.core.component.Observer`): what a pass does arrives here directly;
what a cell or a widget does outside a pass becomes an event (:class:`~lightnb.core.events.ValueSet`,
:class:`~lightnb.core.events.RunRequested`, :class:`~lightnb.core.events.StopRequested`) handed to the
shell's ``outside`` callable, which handles it like any other — so every change of the app's state is an
event, and every handled event can be journaled (``journal(now, event)``). Replaying a journal into a fresh
tree of the same classes gives the same state.

Its bookkeeping is proportional to what changed, not to the size of the app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from .calls import Call, Decision, WorkStageStatus
from .component import Node, Observer
from .events import (
    Advance,
    Again,
    AppStage,
    CallLost,
    Changes,
    Closed,
    Ended,
    Ending,
    EndRequested,
    Event,
    Instruction,
    LogEntry,
    Logged,
    Notify,
    Push,
    RunRequested,
    RuntimeFailed,
    RuntimeReady,
    SetEntry,
    Started,
    StatusEntry,
    StepRequested,
    StopCall,
    StopRequested,
    Submit,
    Tick,
    Touched,
    ValueSet,
    WakeAt,
    WorkBatch,
    WorksQuiet,
)
from .flow import AppEnd, LightningFlow, find_component
from .logs import LogBuffer
from .schedule import Schedules
from .tracebacks import format_user_traceback
from .values import plain
from .work import LightningWork, hash_arguments, unpicklable_argument

Journal = Callable[[float, Event], None]


class _Blocked(BaseException):
    """Ends a flow pass at a blocking (``parallel=False``) call that has not finished."""


class EngineState(Observer):
    """The state of one app and the rules that change it. See the module docstring.

    Parameters
    ----------
    root:
        The root flow.
    paused:
        Passes run only on :class:`~lightnb.core.events.StepRequested`.
    lock:
        What :meth:`mutating` holds while a component changes (the shell's lock; none when driven
        synchronously by a test).
    journal:
        Called with ``(now, event)`` for every event handled, before it is applied.
    outside:
        Handles an event produced outside a flow pass (a cell setting a value): the shell's entry point.
        Default: handled here at once, its instructions kept in :attr:`outside_instructions`.
    """

    def __init__(self, root: LightningFlow, *, paused: bool = False,
                 lock: AbstractContextManager[Any] | None = None, journal: Journal | None = None,
                 outside: Callable[[Event], None] | None = None) -> None:
        self.root = root
        self.paused = paused
        self.lock: AbstractContextManager[Any] = lock if lock is not None else nullcontext()
        self.journal = journal
        self.outside = outside or self._handle_outside_here
        self.outside_instructions: list[Instruction] = []
        self.stage = AppStage.NOT_STARTED
        self.end_message: str | None = None
        self.failed_work: str | None = None
        self.ending: tuple[AppStage, str] | None = None
        self.executor_ready = False
        self.passes = 0
        # Counts the changes views redraw for (a component's state marked changed, the app's stage), one by
        # one and under the lock: a frontend's page compares it with the version it drew, and a write from
        # the page learns exactly which version it produced (see lightnb.frontend.state_server).
        self.state_version = 0
        self.now = 0.0
        self.logs: dict[str, LogBuffer] = {}
        self.works: dict[str, LightningWork] = {}
        self.last_worker: dict[str, str] = {}
        self.stopping: list[tuple[LightningWork, Call]] = []
        self._announced = False
        self._ready: dict[LightningWork, None] = {}  # works with queued calls, in request order
        self._pushes: dict[LightningWork, dict[str, Any]] = {}
        self._push_seq = 0
        self._flow_stack: list[str] = []
        self._changes = Changes()
        self._in_pass = False
        self._dirty = True
        self._step_wanted = False
        self._out: list[Instruction] = []
        self.schedules = Schedules()
        self._wake_at: float | None = None
        self._index(root)

    # -- the one entry point ------------------------------------------------------------------------------
    def handle(self, events: Iterable[Event], now: float) -> list[Instruction]:
        """Apply ``events`` (at time ``now``) and return what the shell must do, in order."""
        self.now = now
        out: list[Instruction] = []
        previous, self._out = self._out, out
        try:
            for event in events:
                if self.journal is not None:
                    self.journal(now, event)
                _HANDLERS[type(event)](self, event)
            if self.ending is not None and not self._announced:
                self._announce_end()
        finally:
            self._out = previous
        return out

    @property
    def quiet(self) -> bool:
        """Ending: every call that was running when the app began to end has reported its end."""
        return all(call.is_finished for _, call in self.stopping)

    @property
    def in_pass(self) -> bool:
        return self._in_pass

    def flow_output(self, stream: str, text: str) -> None:
        """What the flow of the current pass printed (the shell routes the loop thread's output here)."""
        self._log(self._current_flow, stream, text)

    # -- handlers -----------------------------------------------------------------------------------------
    def _on_started(self, event: Started) -> None:
        self.stage = AppStage.RUNNING
        self._changes.stage = True
        self.state_version += 1
        self.root._set_observer(self)
        for work in self.works.values():  # calls queued before the start (a resumed app's interrupted ones)
            if work._calls.queue:
                self._ready[work] = None

    def _on_runtime_ready(self, event: RuntimeReady) -> None:
        self.executor_ready = True

    def _on_runtime_failed(self, event: RuntimeFailed) -> None:
        self._end(AppStage.FAILED, event.message)

    def _on_end_requested(self, event: EndRequested) -> None:
        self._end(event.stage, event.message)

    def _on_step_requested(self, event: StepRequested) -> None:
        self._step_wanted = True

    def _on_touched(self, event: Touched) -> None:
        self._mark(find_component(self.root, event.component))

    def _on_tick(self, event: Tick) -> None:
        self._wake_at = None
        self._mark(self.root)

    def _on_logged(self, event: Logged) -> None:
        self._log(event.component, event.stream, event.text)

    def _on_value_set(self, event: ValueSet) -> None:
        component = find_component(self.root, event.component)
        if component.__dict__.get(event.attribute) is not event.value:  # a replay: not set on this tree yet
            component._apply_remote(event.attribute, event.value)
        self._record_set(component, event.attribute, event.value)

    def _on_run_requested(self, event: RunRequested) -> None:
        self._request(self._work(event.work), event.args, event.kwargs)

    def _on_stop_requested(self, event: StopRequested) -> None:
        self._stop_work(self._work(event.work))

    def _on_advance(self, event: Advance) -> None:
        if self.ending is None and (self._step_wanted or (self._dirty and not self.paused)):
            self._pass()
        if self.ending is None:
            self._ship()
            if self._dirty and not self.paused:
                self._out.append(Again())
            wake_at = self.schedules.earliest()
            if wake_at is not None and wake_at <= self.now:
                # Due, but the pass did not reach the schedule's call (a blocking call before it): the pass
                # that reaches it fires it; waking for it now would only spin.
                wake_at = None
            if wake_at != self._wake_at:
                self._wake_at = wake_at
                self._out.append(WakeAt(wake_at))
        self._notify()

    def _on_batch(self, batch: WorkBatch) -> None:
        work = self.works.get(batch.work_name)
        if work is None:
            return
        table = work._calls
        call = table.find(batch.call_id)
        current = call is not None and not call.is_finished
        for entry in batch.entries:
            if isinstance(entry, LogEntry):
                self._log(work.name, entry.stream, entry.text)
            elif not current:
                continue  # a late batch from an execution that already ended (stopped, lost)
            elif isinstance(entry, SetEntry):
                work._apply_remote(entry.attribute, entry.value)
                self._mark(work)
            elif isinstance(entry, StatusEntry):
                if entry.stage is WorkStageStatus.RUNNING:
                    table.on_running(batch.call_id, entry.timestamp)
                    if batch.worker is not None:
                        self.last_worker[work.name] = batch.worker
                    self._mark(work)
                else:
                    self._finish_call(work, batch.call_id, entry.stage, entry.message, entry.reason,
                                      entry.timestamp)
                    current = False

    def _on_call_lost(self, event: CallLost) -> None:
        work = self.works.get(event.work_name)
        if work is not None:
            stage = WorkStageStatus.STOPPED if event.reason == "stop" else WorkStageStatus.FAILED
            self._finish_call(work, event.call_id, stage, event.message, event.reason)

    def _on_works_quiet(self, event: WorksQuiet) -> None:
        for work, call in self.stopping:
            if not call.is_finished:
                work._calls.on_finished(call.call_id, WorkStageStatus.STOPPED, self.now,
                                        "the app ended before the work reported that it stopped", "stop")
                self._mark(work)

    def _on_closed(self, event: Closed) -> None:
        stage, message = self.ending or (AppStage.STOPPED, "stopped")
        self.root._set_observer(None)
        self.end_message = message
        self.stage = stage
        self._changes.stage = True
        self.state_version += 1
        self._out.append(Ended(stage, message))
        self._notify()

    # -- the pass and what it produced --------------------------------------------------------------------
    def _pass(self) -> None:
        self._dirty = False
        self._step_wanted = False
        self._in_pass = True
        try:
            self.root.run()
        except _Blocked:
            pass
        except AppEnd as end:
            self._end(AppStage.FAILED if end.failed else AppStage.STOPPED, end.message)
        except BaseException as error:
            flow = getattr(error, "_lightnb_flow", None) or self._current_flow
            self._end(AppStage.FAILED, f"{flow} failed:\n{format_user_traceback(error)}")
        finally:
            self._in_pass = False
            self._flow_stack.clear()
            self.passes += 1
            self._changes.passes += 1

    def _ship(self) -> None:
        """Instructions for what the pass and the events produced: calls to execute, values for running works."""
        if not self.executor_ready:
            return
        for work in list(self._ready):
            call = work._calls.take_next()
            del self._ready[work]
            if call is not None:
                self._pushes.pop(work, None)  # the call carries every value set so far
                self._out.append(Submit(work, call, work.cloud_compute.dask_resources,
                                        self.last_worker.get(work.name)))
        for work, values in list(self._pushes.items()):
            active = work._calls.active
            if active is None:
                del self._pushes[work]
            elif active.stage is WorkStageStatus.RUNNING:
                self._push_seq += 1
                self._out.append(Push(work.name, active.call_id, self._push_seq, values))
                del self._pushes[work]

    def _notify(self) -> None:
        if self._changes:
            self._out.append(Notify(self._changes))
            self._changes = Changes()

    def _announce_end(self) -> None:
        """The app ends: queued calls end, running ones are asked to stop; the shell waits for them."""
        assert self.ending is not None
        self._announced = True
        self.stopping = [(w, w._calls.active) for w in self.works.values() if w._calls.active is not None]
        for work in self.works.values():
            work._calls.stop_all(self.now, "the app ended")
        if self.executor_ready:
            for work, call in self.stopping:
                self._out.append(StopCall(work.name, call.call_id, call.stage is WorkStageStatus.RUNNING))
        self._out.append(Ending(*self.ending))

    # -- the observer of the tree (see lightnb.core.component.Observer) ------------------------------------
    def mutating(self) -> AbstractContextManager[Any]:
        return self.lock

    def on_set(self, component: Node, attribute: str, value: Any) -> None:
        if self._in_pass:
            self._record_set(component, attribute, value)
        else:
            self.outside(ValueSet(component.name, attribute, value))

    def on_attach(self, parent: Node, child: Node) -> None:
        self._index(child)
        self._mark(parent)
        for node in child._walk():
            self._changes.state.add(node.name)

    def on_detach(self, parent: Node, child: Node) -> None:
        # A deleted work stays known by its name until its stopped call has reported (or a new component
        # takes the name): its stop is already on its way.
        self._mark(parent)
        self._changes.state.add(child.name)
        for node in child._walk():
            if isinstance(node, LightningWork):
                self._forget_if_deleted(node)

    def _forget_if_deleted(self, work: LightningWork) -> None:
        if work._parent is None and work._calls.active is None and self.works.get(work.name) is work:
            del self.works[work.name]

    def on_run(self, work: LightningWork, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not self._in_pass:
            # A cell calling work.run() on a running app: the call is queued between passes.
            self.outside(RunRequested(work.name, args, kwargs))
            return None
        if self._request(work, args, kwargs).block:
            raise _Blocked()
        return None

    def on_stop(self, work: LightningWork) -> None:
        if self._in_pass:
            self._stop_work(work)
        else:
            self.outside(StopRequested(work.name))

    def check_stop(self, work: LightningWork) -> None:
        return None  # only a running work (on its worker) can be asked to stop mid-call

    def on_end(self, flow: LightningFlow, message: str, failed: bool) -> None:
        if self._in_pass:
            raise AppEnd(message, failed)
        self.outside(EndRequested(AppStage.FAILED if failed else AppStage.STOPPED, message))

    def on_schedule(self, flow: LightningFlow, key: str, cron: str, start_time: Any) -> bool:
        return self.schedules.check(key, cron, start_time, self.now, self.passes)

    def on_output(self, component: Node, stream: str, text: str) -> None:
        if self._in_pass:
            self._log(component.name, stream, text)
        else:
            self.outside(Logged(component.name, stream, text))

    def enter_flow(self, flow: LightningFlow) -> None:
        self._flow_stack.append(flow.name)

    def exit_flow(self, flow: LightningFlow) -> None:
        if self._flow_stack:
            self._flow_stack.pop()

    # -- helpers ------------------------------------------------------------------------------------------
    def _handle_outside_here(self, event: Event) -> None:
        self.outside_instructions.extend(self.handle([event], self.now))

    def _work(self, name: str) -> LightningWork:
        work = self.works.get(name)
        if work is None:
            raise KeyError(f"no work {name!r} in this app")
        return work

    def _record_set(self, component: Node, attribute: str, value: Any) -> None:
        self._mark(component)
        if isinstance(component, LightningWork) and component._calls.active is not None:
            self._pushes.setdefault(component, {})[attribute] = plain(value)

    def _request(self, work: LightningWork, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Decision:
        try:
            call_hash = hash_arguments(args, kwargs)
        except Exception as error:
            raise TypeError(unpicklable_argument(work, args, kwargs, error)) from None
        decision = work._calls.request(call_hash, args, kwargs, cache_calls=work.cache_calls,
                                       parallel=work.parallel, now=self.now)
        if decision.dispatch:
            self._ready[work] = None
            self._mark(work)
        return decision

    def _stop_work(self, work: LightningWork) -> None:
        active, changed = work._calls.stop(self.now)
        self._ready.pop(work, None)
        self._pushes.pop(work, None)
        if active is not None and self.executor_ready:
            self._out.append(StopCall(work.name, active.call_id, active.stage is WorkStageStatus.RUNNING))
        elif active is not None:
            self._finish_call(work, active.call_id, WorkStageStatus.STOPPED, "stopped before it started", "stop")
        if changed or active is not None:
            self._mark(work)

    def _finish_call(self, work: LightningWork, call_id: str, stage: WorkStageStatus, message: str | None,
                     reason: str | None, when: float | None = None) -> None:
        if not work._calls.on_finished(call_id, stage, when or self.now, message, reason):
            return
        self._mark(work)
        self._forget_if_deleted(work)
        if work._calls.queue:
            self._ready[work] = None
        if stage is WorkStageStatus.FAILED and work.raise_exception:
            if self.ending is None:
                self.failed_work = work.name
            self._end(AppStage.FAILED, f"{work.name} failed:\n{message}")

    def _index(self, node: Node) -> None:
        for child in node._walk():
            if isinstance(child, LightningWork):
                self.works[child.name] = child

    def _mark(self, component: Node) -> None:
        self._dirty = True
        self._changes.state.add(component.name)
        self.state_version += 1

    def _log(self, name: str, stream: str, text: str) -> None:
        buffer = self.logs.get(name)
        if buffer is None:
            buffer = self.logs[name] = LogBuffer()
        buffer.append(text, stream)
        self._changes.logs.add(name)

    @property
    def _current_flow(self) -> str:
        return self._flow_stack[-1] if self._flow_stack else self.root.name

    def _end(self, stage: AppStage, message: str) -> None:
        if self.ending is None:
            self.ending = (stage, message)


_HANDLERS: dict[type, Callable[[EngineState, Any], None]] = {
    Started: EngineState._on_started,
    RuntimeReady: EngineState._on_runtime_ready,
    RuntimeFailed: EngineState._on_runtime_failed,
    EndRequested: EngineState._on_end_requested,
    StepRequested: EngineState._on_step_requested,
    Touched: EngineState._on_touched,
    Tick: EngineState._on_tick,
    Logged: EngineState._on_logged,
    ValueSet: EngineState._on_value_set,
    RunRequested: EngineState._on_run_requested,
    StopRequested: EngineState._on_stop_requested,
    Advance: EngineState._on_advance,
    WorkBatch: EngineState._on_batch,
    CallLost: EngineState._on_call_lost,
    WorksQuiet: EngineState._on_works_quiet,
    Closed: EngineState._on_closed,
}
