"""The app's event loop: steps the root flow on a thread of its own, woken only by events.

The loop blocks on its inbox; it wakes for a work's batch of changes, a status change, a value a cell or a
widget set, a command (step, stop) — never on a timer of its own, so an idle app costs no CPU. Each wake-up
applies every pending event, runs one flow pass if anything changed, then ships what the pass produced: new
calls to execute, values the flow set on running works, stop requests. Its bookkeeping is proportional to
what changed, not to the size of the app.

The loop is also the *observer* of every flow-side component (see :class:`~lightnb.core.component.Observer`):
sets from the flow or from another thread (a cell, a widget) arrive here, the latter while holding the
loop's lock, so they are applied between passes.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import cloudpickle

from ..core.calls import Call, WorkStageStatus
from ..core.component import Node
from ..core.flow import AppEnd, LightningFlow
from ..core.logs import LogBuffer
from ..core.values import describe_type, plain
from ..core.work import LightningWork, hash_arguments
from . import capture
from .context import AppContext, set_current
from .pickling import dumps, ship_by_value
from .protocol import CallLost, CallSpec, Executor, RuntimeFailed, RuntimeReady, WorkBatch


class AppStage(str, Enum):
    NOT_STARTED = "not_started"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class _Blocked(BaseException):
    """Ends a flow pass at a blocking (``parallel=False``) call that has not finished."""


@dataclass
class Changes:
    """What one loop iteration changed, for views: component names whose state or log changed."""

    state: set[str] = field(default_factory=set)
    logs: set[str] = field(default_factory=set)
    stage: bool = False
    passes: int = 0


Listener = Callable[[Changes], None]

_WAKE = ("wake",)
# How long stopping an app waits for its works to report that they stopped.
STOP_GRACE_SECONDS = 5.0


class AppLoop:
    """Steps ``root`` on its own thread; the observer of every flow-side component."""

    def __init__(self, app_id: str, root: LightningFlow, executor: Executor, *, paused: bool = False,
                 context: AppContext | None = None) -> None:
        self.app_id = app_id
        self.context = context or AppContext(app_id)
        self.root = root
        self.executor = executor
        self.paused = paused
        self.stage = AppStage.NOT_STARTED
        self.end_message: str | None = None
        self.failed_work: str | None = None
        self.lock = threading.RLock()
        self.done = threading.Event()
        self.passes = 0
        self.last_pass_seconds = 0.0
        # (events handled, pass seconds or None, whole iteration seconds) of recent iterations: what the loop
        # costs, for benchmarks and diagnostics.
        self.iterations: deque[tuple[int, float | None, float]] = deque(maxlen=100_000)
        self.logs: dict[str, LogBuffer] = {}
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ident: int | None = None
        self._in_pass = False
        self._dirty = True
        self._ending: tuple[AppStage, str] | None = None
        self._executor_ready = False
        self._works: dict[str, LightningWork] = {}
        self._ready: dict[LightningWork, None] = {}  # works with queued calls, in request order
        self._pushes: dict[LightningWork, dict[str, Any]] = {}
        self._push_seq = 0
        self._flow_stack: list[str] = []
        self._listeners: list[Listener] = []
        self._changes = Changes()
        self._index(root)

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self, executor_started: bool) -> None:
        """Start the loop thread; the executor is started in the background unless already started."""
        self.stage = AppStage.RUNNING
        self._changes.stage = True
        self.root._set_observer(self)  # type: ignore[arg-type]
        if executor_started:
            self._executor_ready = True
        else:
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

    def post(self, event: Any) -> None:
        """Hand the loop an event (from any thread)."""
        self._inbox.put(event)

    def request_stop(self, message: str = "stopped by the user", failed: bool = False) -> None:
        self.post(("end", AppStage.FAILED if failed else AppStage.STOPPED, message))

    def step(self, timeout: float | None = None) -> None:
        """Run exactly one pass (for an app started paused) and return once it ran."""
        if self.on_loop_thread:
            raise RuntimeError("app.step() cannot be called from inside a flow")
        finished = threading.Event()
        self.post(("step", finished))
        if not finished.wait(timeout):
            raise TimeoutError(f"the app's loop did not complete a pass within {timeout} s")

    def call_soon(self, function: Callable[[], Any]) -> None:
        """Run ``function`` on the loop thread, between passes."""
        self.post(("call", function))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(changes)`` on the loop thread after each iteration that changed something."""
        self._listeners.append(listener)
        return lambda: self.unsubscribe(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self._ident

    @property
    def ended(self) -> bool:
        return self.stage in (AppStage.STOPPED, AppStage.FAILED)

    # -- the loop -----------------------------------------------------------------------------------------
    def _main(self) -> None:
        self._ident = threading.get_ident()
        set_current(self.context)
        capture.install()
        try:
            while self._ending is None:
                events = [self._inbox.get()]
                with contextlib.suppress(queue.Empty):
                    while True:
                        events.append(self._inbox.get_nowait())
                with self.lock:
                    began = time.perf_counter()
                    passes = self.passes
                    forced: list[threading.Event] = []
                    for event in events:
                        self._handle(event, forced)
                    if self._ending is None and (forced or (self._dirty and not self.paused)):
                        self._pass()
                    self._ship()
                    ran = self.last_pass_seconds if self.passes != passes else None
                    self.iterations.append((len(events), ran, time.perf_counter() - began))
                    if self._dirty and not self.paused and self._ending is None:
                        self._inbox.put(_WAKE)
                for finished in forced:
                    finished.set()
                self._notify()
        except BaseException:
            self._end(AppStage.FAILED, f"lightnb's loop failed:\n{traceback.format_exc()}")
        finally:
            self._shutdown()

    def _handle(self, event: Any, forced: list[threading.Event]) -> None:
        if isinstance(event, WorkBatch):
            self._apply_batch(event)
        elif isinstance(event, CallLost):
            self._lose_call(event)
        elif isinstance(event, RuntimeReady):
            self._executor_ready = True
        elif isinstance(event, RuntimeFailed):
            self._end(AppStage.FAILED, event.message)
        elif event[0] == "step":
            forced.append(event[1])
        elif event[0] == "end":
            self._end(event[1], event[2])
        elif event[0] == "call":
            try:
                event[1]()
            except Exception:
                self._log("root", "stderr", traceback.format_exc())

    def _pass(self) -> None:
        self._dirty = False
        started = time.perf_counter()
        self._in_pass = True
        try:
            with capture.route(self._flow_output):
                self.root.run()
        except _Blocked:
            pass
        except AppEnd as end:
            self._end(AppStage.FAILED if end.failed else AppStage.STOPPED, end.message)
        except BaseException as error:
            from ..core.tracebacks import format_user_traceback

            self._end(AppStage.FAILED, f"{self._current_flow} failed:\n{format_user_traceback(error)}")
        finally:
            self._in_pass = False
            self._flow_stack.clear()
            self.passes += 1
            self._changes.passes += 1
            self.last_pass_seconds = time.perf_counter() - started

    def _ship(self) -> None:
        """Send what the pass and the events produced: calls to execute, values for running works."""
        if not self._executor_ready or self._ending is not None:
            return
        for work in list(self._ready):
            call = work._calls.take_next()
            del self._ready[work]
            if call is not None:
                self._submit(work, call)
        for work, values in list(self._pushes.items()):
            active = work._calls.active
            if active is None:
                del self._pushes[work]
            elif active.stage is WorkStageStatus.RUNNING:
                self._push_seq += 1
                self.executor.push(work.name, active.call_id, {"seq": self._push_seq, "values": values})
                del self._pushes[work]

    def _submit(self, work: LightningWork, call: Call) -> None:
        try:
            ship_by_value(type(work), *(type(a) for a in (*call.args, *call.kwargs.values())))
            payload = dumps((work, call.args, call.kwargs, self.context))
        except Exception as error:
            self._finish_call(work, call.call_id, WorkStageStatus.FAILED,
                              f"{work.name} ({describe_type(work)}) cannot be pickled to send it to a worker: "
                              f"{type(error).__name__}: {error}. Keep unpicklable objects (locks, open files, "
                              "clients) out of the work, or create them inside run().", "unpicklable")
            return
        self._pushes.pop(work, None)  # the payload carries every value set so far
        self.executor.submit(CallSpec(self.app_id, work.name, call.call_id, payload,
                                      work.cloud_compute.dask_resources,
                                      preferred_worker=getattr(work, "_last_worker", None)))

    # -- events from the runtime --------------------------------------------------------------------------
    def _apply_batch(self, batch: WorkBatch) -> None:
        work = self._works.get(batch.work_name)
        if work is None:
            return
        table = work._calls
        call = table.find(batch.call_id)
        current = call is not None and not call.is_finished
        for entry in batch.entries:
            kind = entry[0]
            if kind == "log":
                self._log(work.name, entry[1], entry[2])
            elif not current:
                continue  # a late batch from an execution that already ended (stopped, lost)
            elif kind == "set":
                work._apply_remote(entry[1], entry[2])
                self._mark(work)
            elif kind == "status":
                stage = WorkStageStatus(entry[1])
                if stage is WorkStageStatus.RUNNING:
                    table.on_running(batch.call_id, entry[4])
                    object.__setattr__(work, "_last_worker", batch.worker)
                    self._mark(work)
                else:
                    self._finish_call(work, batch.call_id, stage, entry[2], entry[3], entry[4])
                    current = False

    def _lose_call(self, event: CallLost) -> None:
        work = self._works.get(event.work_name)
        if work is not None:
            stage = WorkStageStatus.STOPPED if event.reason == "stop" else WorkStageStatus.FAILED
            self._finish_call(work, event.call_id, stage, event.message, event.reason)

    def _finish_call(self, work: LightningWork, call_id: str, stage: WorkStageStatus, message: str | None,
                     reason: str | None, when: float | None = None) -> None:
        if not work._calls.on_finished(call_id, stage, when or time.time(), message, reason):
            return
        self._mark(work)
        if work._calls.queue:
            self._ready[work] = None
        if stage is WorkStageStatus.FAILED and work.raise_exception:
            self.failed_work = work.name
            self._end(AppStage.FAILED, f"{work.name} failed:\n{message}")

    # -- the observer protocol ----------------------------------------------------------------------------
    def mutating(self) -> threading.RLock:
        return self.lock

    def on_set(self, component: Node, attribute: str, value: Any) -> None:
        self._mark(component)
        if isinstance(component, LightningWork) and component._calls.active is not None:
            self._pushes.setdefault(component, {})[attribute] = plain(value)
        if not self._in_pass:
            self._inbox.put(_WAKE)

    def on_attach(self, parent: Node, child: Node) -> None:
        self._index(child)
        self._mark(parent)
        if not self._in_pass:
            self._inbox.put(_WAKE)

    def on_run(self, work: LightningWork, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not self.on_loop_thread:
            # A cell calling work.run() on a running app: queue the call between passes, don't wait for it.
            with self.lock:
                self._request(work, args, kwargs)
            self._inbox.put(_WAKE)
            return None
        if self._request(work, args, kwargs).block and self._in_pass:
            raise _Blocked()
        return None

    def on_stop(self, work: LightningWork) -> None:
        with self.lock:
            self._stop_work(work)
        if not self.on_loop_thread:
            self._inbox.put(_WAKE)

    def _stop_work(self, work: LightningWork) -> None:
        active, changed = work._calls.stop(time.time())
        self._ready.pop(work, None)
        self._pushes.pop(work, None)
        if active is not None and self._executor_ready:
            self.executor.stop(work.name, active.call_id, started=active.stage is WorkStageStatus.RUNNING)
        elif active is not None:
            self._finish_call(work, active.call_id, WorkStageStatus.STOPPED, "stopped before it started", "stop")
        if changed or active is not None:
            self._mark(work)

    def on_end(self, flow: LightningFlow, message: str, failed: bool) -> None:
        stage = AppStage.FAILED if failed else AppStage.STOPPED
        if self._in_pass and self.on_loop_thread:
            raise AppEnd(message, failed)
        self.post(("end", stage, message))

    def enter_flow(self, flow: LightningFlow) -> None:
        self._flow_stack.append(flow.name)

    def exit_flow(self, flow: LightningFlow) -> None:
        if self._flow_stack:
            self._flow_stack.pop()

    # -- helpers ------------------------------------------------------------------------------------------
    def _request(self, work: LightningWork, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            call_hash = hash_arguments(args, kwargs)
        except Exception as error:
            raise TypeError(_unpicklable_argument(work, args, kwargs, error)) from None
        decision = work._calls.request(call_hash, args, kwargs, cache_calls=work.cache_calls,
                                       parallel=work.parallel, now=time.time())
        if decision.dispatch:
            self._check_picklable(work, args, kwargs)
            self._ready[work] = None
            self._mark(work)
        return decision

    @staticmethod
    def _check_picklable(work: LightningWork, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            cloudpickle.dumps((args, kwargs))
        except Exception as error:
            raise TypeError(_unpicklable_argument(work, args, kwargs, error)) from None

    def _index(self, node: Node) -> None:
        for child in node._walk():
            if isinstance(child, LightningWork):
                self._works[child.name] = child

    def _mark(self, component: Node) -> None:
        self._dirty = True
        self._changes.state.add(component.name)

    def _log(self, name: str, stream: str, text: str) -> None:
        buffer = self.logs.get(name)
        if buffer is None:
            buffer = self.logs[name] = LogBuffer()
        buffer.append(text)
        self._changes.logs.add(name)

    @property
    def _current_flow(self) -> str:
        return self._flow_stack[-1] if self._flow_stack else self.root.name

    def _flow_output(self, stream: str, text: str) -> None:
        self._log(self._current_flow, stream, text)

    def _notify(self) -> None:
        changes = self._changes
        if not (changes.state or changes.logs or changes.stage or changes.passes):
            return
        self._changes = Changes()
        for listener in list(self._listeners):
            try:
                listener(changes)
            except Exception:
                traceback.print_exc()

    def _end(self, stage: AppStage, message: str) -> None:
        if self._ending is None:
            self._ending = (stage, message)

    def _shutdown(self) -> None:
        """Stop every work, wait (a little) for them to report it, release the executor."""
        stage, message = self._ending or (AppStage.STOPPED, "stopped")
        with self.lock:
            active = [(w, w._calls.active) for w in self._works.values() if w._calls.active is not None]
            for work in self._works.values():
                work._calls.stop_all(time.time(), "the app ended")
            if self._executor_ready:
                for work, call in active:
                    assert call is not None
                    self.executor.stop(work.name, call.call_id, started=call.stage is WorkStageStatus.RUNNING)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while self._executor_ready and any(w._calls.active is not None for w, _ in active):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                event = self._inbox.get(timeout=remaining)
            except queue.Empty:
                break
            if isinstance(event, (WorkBatch, CallLost)):
                with self.lock:
                    # A failure while stopping does not change how the app ended.
                    if isinstance(event, WorkBatch):
                        self._apply_batch(event)
                    else:
                        self._lose_call(event)
            elif isinstance(event, tuple) and event[0] == "step":
                event[1].set()
        with self.lock:
            for work, call in active:
                if call is not None and not call.is_finished:
                    work._calls.on_finished(call.call_id, WorkStageStatus.STOPPED, time.time(),
                                            "the app ended before the work reported that it stopped", "stop")
                    self._mark(work)
        try:
            self.executor.close()
        except Exception:
            self._log("root", "stderr", f"closing the cluster failed:\n{traceback.format_exc()}")
        self.root._set_observer(None)
        self.end_message = message
        self.stage = stage
        self._changes.stage = True
        self.done.set()
        self._notify()
        # Unblock anyone still waiting on a step.
        with contextlib.suppress(queue.Empty):
            while True:
                event = self._inbox.get_nowait()
                if isinstance(event, tuple) and event[0] == "step":
                    event[1].set()


def _unpicklable_argument(work: LightningWork, args: tuple[Any, ...], kwargs: dict[str, Any],
                          error: Exception) -> str:
    named: Iterator[tuple[str, Any]] = iter([*((f"argument {i}", a) for i, a in enumerate(args)),
                                             *((f"argument {k!r}", v) for k, v in kwargs.items())])
    for label, value in named:
        try:
            cloudpickle.dumps(value)
        except Exception as inner:
            return (f"{label} of {work.name}.run() ({describe_type(value)}) cannot be pickled to send it to "
                    f"the work's worker: {type(inner).__name__}: {inner}. Pass plain data, a lightnb Path or "
                    "Payload, or create the object inside the work's run().")
    return f"the arguments of {work.name}.run() cannot be pickled: {type(error).__name__}: {error}"
