"""The app's loop: a thin shell around the pure engine, on a thread of its own, woken only by events.

The shell owns what the engine may not: the thread, the clock, the lock, the executor and the listeners.
It blocks on its inbox; it wakes for a work's batch, a lost call, a command (step, stop), or an event a cell
or a widget produced. Each wake-up hands every pending event to :meth:`EngineState.handle
<lightnb.core.engine.EngineState.handle>` under the lock, then an :class:`~lightnb.core.events.Advance`
(the flow pass, if anything changed), and carries out the instructions they returned *after releasing the
lock*: pickling a work, submitting it, pushing values, stopping calls and telling views never hold up a
cell or a widget waiting on the lock. An idle app costs no CPU: there is no timer.

Cells and widgets change the tree under the same lock (``Observer.mutating``); what they do outside a pass
reaches the engine as an event through :meth:`AppLoop._outside`, handled at once on their thread, its
instructions carried out by the loop thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.engine import EngineState, Journal
from ..core.events import (
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
    Logged,
    Notify,
    Push,
    RuntimeFailed,
    RuntimeReady,
    Started,
    StepRequested,
    StopCall,
    Submit,
    Tick,
    WakeAt,
    WorkBatch,
    WorksQuiet,
)
from ..core.flow import LightningFlow
from ..core.logs import LogBuffer
from ..core.values import describe_type
from . import capture
from .context import AppContext, set_current
from .pickling import dumps, ship_by_value
from .protocol import CallSpec, Executor

__all__ = ["STOP_GRACE_SECONDS", "AppLoop", "AppStage", "Changes", "Listener"]

Listener = Callable[[Changes], None]
_log = logging.getLogger("lightnb.loop")

# How long stopping an app waits for its works to report that they stopped.
STOP_GRACE_SECONDS = 5.0
# A pass that took this long or more (a flow walking a thousand works) is not run again the moment the next
# event arrives: the loop first lets events gather for as long as that pass took (at most GATHER_MAX_SECONDS),
# so that under a stream of updates it spends at most about half its time in passes, and the client's event
# loop (on an embedded cluster, the scheduler's too) gets the rest. Cheaper passes wait for nothing.
GATHER_FROM_SECONDS = 0.001
GATHER_MAX_SECONDS = 0.02


def gather_seconds(last_pass: float | None) -> float:
    """How long the loop lets events gather before its next iteration, after a pass of ``last_pass`` seconds
    (``None``: the last iteration ran no pass)."""
    if last_pass is None or last_pass < GATHER_FROM_SECONDS:
        return 0.0
    return min(last_pass, GATHER_MAX_SECONDS)


@dataclass(frozen=True, slots=True)
class _Wake:
    """Only wake the loop (an Advance follows every wake-up)."""


@dataclass(frozen=True, slots=True)
class _Step:
    finished: threading.Event


@dataclass(frozen=True, slots=True)
class _Call:
    function: Callable[[], Any]


@dataclass(frozen=True, slots=True)
class _Execute:
    """Instructions an outside event produced, for the loop thread to carry out."""

    instructions: list[Instruction]


_WAKE = _Wake()
_ADVANCE = Advance()


class AppLoop:
    """Steps ``root`` on its own thread: feeds the engine events, carries out its instructions."""

    def __init__(self, app_id: str, root: LightningFlow, executor: Executor, *, paused: bool = False,
                 context: AppContext | None = None, journal: Journal | None = None) -> None:
        self.app_id = app_id
        self.context = context or AppContext(app_id)
        self.root = root
        self.executor = executor
        self.lock = threading.RLock()
        self.done = threading.Event()
        self.engine = EngineState(root, paused=paused, lock=self.lock, journal=journal, outside=self._outside)
        # (inbox items handled, pass seconds or None, whole iteration seconds) of recent iterations: what the
        # loop costs, for benchmarks and diagnostics (the last 20 000: ~3 MiB; 100 000 were ~15 MiB of an
        # app's memory, a growth a long soak showed).
        self.iterations: deque[tuple[int, float | None, float]] = deque(maxlen=20_000)
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ident: int | None = None
        self._listeners: list[Listener] = []
        self._wake_at: float | None = None  # when a schedule needs a pass (the loop thread's only)
        # Run on the loop thread once the app has ended, before anyone waiting for it is told (a durable app
        # writes how it ended into its record).
        self.before_done: list[Callable[[], None]] = []

    # -- what the engine knows ----------------------------------------------------------------------------
    @property
    def stage(self) -> AppStage:
        return self.engine.stage

    @property
    def end_message(self) -> str | None:
        return self.engine.end_message

    @property
    def failed_work(self) -> str | None:
        return self.engine.failed_work

    @property
    def passes(self) -> int:
        return self.engine.passes

    @property
    def paused(self) -> bool:
        return self.engine.paused

    @property
    def logs(self) -> dict[str, LogBuffer]:
        return self.engine.logs

    @property
    def ended(self) -> bool:
        return self.engine.stage in (AppStage.STOPPED, AppStage.FAILED)

    @property
    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self._ident

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self, executor_started: bool) -> None:
        """Start the loop thread; the executor is started in the background unless already started."""
        events: list[Event] = [Started()]
        if executor_started:
            events.append(RuntimeReady(self.executor.description))
        with self.lock:
            instructions = self.engine.handle(events, time.time())
        self._inbox.put(_Execute(instructions))
        if not executor_started:
            threading.Thread(target=self._start_executor, name=f"lightnb-{self.app_id}-connect",
                             daemon=True).start()
        self._inbox.put(_WAKE)  # the first pass
        self._thread = threading.Thread(target=self._main, name=f"lightnb-{self.app_id}-loop", daemon=True)
        self._thread.start()

    def _start_executor(self) -> None:
        try:
            self.executor.start(self.post)
        except BaseException as error:
            self.post(RuntimeFailed(f"could not start the cluster: {type(error).__name__}: {error}"))
        else:
            self.post(RuntimeReady(self.executor.description))

    def post(self, event: Event) -> None:
        """Hand the loop an event (from any thread)."""
        self._inbox.put(event)

    def request_stop(self, message: str = "stopped by the user", failed: bool = False) -> None:
        self.post(EndRequested(AppStage.FAILED if failed else AppStage.STOPPED, message))

    def step(self, timeout: float | None = None) -> None:
        """Run exactly one pass (for an app started paused) and return once it ran."""
        if self.on_loop_thread:
            raise RuntimeError("app.step() cannot be called from inside a flow")
        finished = threading.Event()
        self._inbox.put(_Step(finished))
        if not finished.wait(timeout):
            raise TimeoutError(f"the app's loop did not complete a pass within {timeout} s")

    def call_soon(self, function: Callable[[], Any]) -> None:
        """Run ``function`` on the loop thread, between passes."""
        self._inbox.put(_Call(function))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(changes)`` on the loop thread after each iteration that changed something."""
        self._listeners.append(listener)
        return lambda: self.unsubscribe(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- the loop -----------------------------------------------------------------------------------------
    def _main(self) -> None:
        self._ident = threading.get_ident()
        set_current(self.context)
        capture.install()
        engine = self.engine
        try:
            with capture.route(engine.flow_output):
                while engine.ending is None:
                    items = [self._next_item()]
                    gather = gather_seconds(self.iterations[-1][1] if self.iterations else None)
                    if gather:
                        time.sleep(gather)
                    with contextlib.suppress(queue.Empty):
                        while True:
                            items.append(self._inbox.get_nowait())
                    self._iterate(items)
        except BaseException:
            self._fail(f"lightnb's loop failed:\n{traceback.format_exc()}")
        finally:
            self._shutdown()

    def _next_item(self) -> Any:
        """The next inbox item; a :class:`Tick` when a schedule's time comes first (``flow.schedule``)."""
        if self._wake_at is None:
            return self._inbox.get()
        try:
            return self._inbox.get(timeout=max(0.0, self._wake_at - time.time()))
        except queue.Empty:
            self._wake_at = None
            return Tick()

    def _iterate(self, items: list[Any]) -> None:
        began = time.perf_counter()
        engine = self.engine
        events: list[Event] = []
        instructions: list[Instruction] = []
        steps: list[threading.Event] = []
        calls: list[Callable[[], Any]] = []
        for item in items:
            kind = type(item)
            if kind is _Wake:
                continue
            if kind is _Execute:
                instructions.extend(item.instructions)
            elif kind is _Step:
                events.append(StepRequested())
                steps.append(item.finished)
            elif kind is _Call:
                calls.append(item.function)
            else:
                events.append(item)
        with self.lock:
            for function in calls:
                try:
                    function()
                except Exception:
                    events.append(Logged("root", "stderr", traceback.format_exc()))
            now = time.time()
            if events:
                instructions.extend(engine.handle(events, now))
            passes = engine.passes
            started = time.perf_counter()
            instructions.extend(engine.handle([_ADVANCE], now))
            ran = time.perf_counter() - started if engine.passes != passes else None
        self._execute(instructions)
        self.iterations.append((len(items), ran, time.perf_counter() - began))
        for finished in steps:
            finished.set()

    def _outside(self, event: Event) -> None:
        """An event from outside a pass (a cell, a widget, a function run between passes): handled now, on the
        caller's thread; its instructions are carried out by the loop thread."""
        with self.lock:
            instructions = self.engine.handle([event], time.time())
        if instructions:
            self._inbox.put(_Execute(instructions))
        self._inbox.put(_WAKE)

    # -- carrying out instructions (never under the lock) -------------------------------------------------
    def _execute(self, instructions: list[Instruction]) -> None:
        calls: list[CallSpec] = []  # consecutive submits go to the executor together (one graph on Dask)
        for instruction in instructions:
            if isinstance(instruction, Submit):
                spec = self._call_spec(instruction)
                if spec is not None:
                    calls.append(spec)
                continue
            if calls:
                self.executor.submit_many(calls)
                calls = []
            if isinstance(instruction, Notify):  # the most frequent first
                self._notify(instruction.changes)
            elif isinstance(instruction, Push):
                self.executor.push(instruction.work_name, instruction.call_id,
                                   {"seq": instruction.seq, "values": instruction.values})
            elif isinstance(instruction, StopCall):
                _log.debug("%s: stopping call %s of %s", self.app_id, instruction.call_id, instruction.work_name)
                self.executor.stop(instruction.work_name, instruction.call_id, started=instruction.started)
            elif isinstance(instruction, Again):
                self._inbox.put(_WAKE)
            elif isinstance(instruction, WakeAt):
                self._wake_at = instruction.when
            elif not isinstance(instruction, (Ending, Ended)):  # the loop sees engine.ending, and ends
                raise TypeError(f"unknown instruction {instruction!r}")
        if calls:
            self.executor.submit_many(calls)

    def _call_spec(self, instruction: Submit) -> CallSpec | None:
        """The call to send, pickled; None (and the call lost, said why) when it cannot be pickled."""
        work, call = instruction.work, instruction.call
        try:
            ship_by_value(type(work), *(type(a) for a in (*call.args, *call.kwargs.values())))
            payload = dumps((work, call.args, call.kwargs, self.context))
        except Exception as error:
            self.post(CallLost(work.name, call.call_id,
                               f"{work.name} ({describe_type(work)}) cannot be pickled to send it to a worker: "
                               f"{type(error).__name__}: {error}. Keep unpicklable objects (locks, open files, "
                               "clients) out of the work, or create them inside run().", "unpicklable"))
            return None
        _log.debug("%s: sending call %s of %s to the cluster (%d bytes)", self.app_id, call.call_id, work.name,
                   len(payload))
        return CallSpec(self.app_id, work.name, call.call_id, payload, instruction.resources,
                        preferred_worker=instruction.preferred_worker)

    def _notify(self, changes: Changes) -> None:
        for listener in list(self._listeners):
            try:
                listener(changes)
            except Exception:
                traceback.print_exc()

    # -- the end ------------------------------------------------------------------------------------------
    def _fail(self, message: str) -> None:
        try:
            with self.lock:
                instructions = self.engine.handle([EndRequested(AppStage.FAILED, message)], time.time())
            self._execute(instructions)
        except BaseException:
            traceback.print_exc()

    def _shutdown(self) -> None:
        """Wait (a little) for the works to report that they stopped, release the executor, end the app."""
        engine = self.engine
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while engine.executor_ready and not engine.quiet:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._inbox.get(timeout=remaining)
            except queue.Empty:
                break
            if isinstance(item, (WorkBatch, CallLost)):
                with self.lock:  # a failure while stopping does not change how the app ended
                    engine.handle([item], time.time())
            elif isinstance(item, _Step):
                item.finished.set()
        with self.lock:
            engine.handle([WorksQuiet()], time.time())
        try:
            self.executor.close()
        except Exception:
            with self.lock:
                engine.handle([Logged("root", "stderr", f"closing the cluster failed:\n{traceback.format_exc()}")],
                              time.time())
        with self.lock:
            instructions = engine.handle([Closed()], time.time())
        for finish in self.before_done:
            try:
                finish()
            except Exception:
                traceback.print_exc()
        self.done.set()
        self._execute(instructions)
        # Unblock anyone still waiting on a step.
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._inbox.get_nowait()
                if isinstance(item, _Step):
                    item.finished.set()
