"""What runs where a work executes: unpack the call, stream the work's changes, report its end.

The same code serves both executors; a :class:`Transport` says how batches leave (``Worker.log_event`` on
Dask, a callback in-process) and on which thread they are flushed. Changes are coalesced while a flush is
pending — a lone change goes out at once, changes faster than the transport are merged with the last value
per attribute winning — and the final status always follows every change of the call.

On Dask the calls running in one worker process share an :class:`Outbox` per app: a flush sends one message
carrying the pending batch of every call there (each still with its own call id and sequence number), so
1000 busy works cost the scheduler a few messages per flush, not one per call.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle

from ..core.calls import WorkStageStatus
from ..core.component import Node, Observer
from ..core.events import LogEntry, SetEntry, StatusEntry, WorkBatch
from ..core.tracebacks import RemoteTraceback
from ..core.values import StateValue, plain
from ..core.work import WorkStopped
from . import capture, context
from .protocol import Entry

if TYPE_CHECKING:
    from ..core.flow import LightningFlow
    from ..core.work import LightningWork

@dataclass
class Transport:
    """How a running call's batches leave this process."""

    send: Callable[[bytes], None]  # ship one pickled batch
    schedule: Callable[[Callable[[], None]], None]  # run a flush soon, on the thread allowed to send
    worker: str | None = None
    # Shared by the calls of one app in this process: their batches leave together (see Outbox).
    outbox: Outbox | None = None
    # Returns once the app has what was sent (a call's last flush waits for it); None: sending is enough.
    settle: Callable[[], None] | None = None
    # The call runs in a worker process (not the user's): its garbage collector is lightnb's to tune.
    worker_process: bool = False


@dataclass(frozen=True)
class Link:
    """How the messages of an app's outbox in this process leave it (see :func:`transport_with_outbox`)."""

    send: Callable[[bytes], None]
    schedule: Callable[[Callable[[], None]], None]
    settle: Callable[[], None] | None = None
    close: Callable[[], None] | None = None


class Outbox:
    """The batches of every call of one app running in this process leave together: one message per flush
    (see :func:`dumps_group`). A channel with something to send marks itself here; the first mark schedules
    a flush (so a lone change goes out at once, with no timer), later ones ride along with it. Flushes are
    serialized, so each call's batches leave in the order of their sequence numbers."""

    def __init__(self, send: Callable[[bytes], None], schedule: Callable[[Callable[[], None]], None],
                 worker: str | None, close: Callable[[], None] | None = None) -> None:
        self._send = send
        self._schedule = schedule
        self.worker = worker
        self.close = close or (lambda: None)
        self._lock = threading.Lock()  # guards _pending and _scheduled
        self._flushing = threading.Lock()  # one flush at a time: taken and sent in order
        self._pending: dict[WorkChannel, None] = {}  # ordered: the first marked goes first
        self._scheduled = False
        self.messages = 0  # how many messages it sent (diagnostics, tests)

    def mark(self, channel: WorkChannel) -> None:
        with self._lock:
            self._pending[channel] = None
            if self._scheduled:
                return
            self._scheduled = True
        self._schedule(self.flush)

    def flush(self) -> None:
        """Send what every marked channel has pending, as one message."""
        with self._flushing:
            with self._lock:
                self._scheduled = False
                channels, self._pending = list(self._pending), {}
            batches = [batch for batch in (channel.take_batch() for channel in channels) if batch is not None]
            if batches:
                self._send(dumps_group(batches, self.worker))
                self.messages += 1


def transport_with_outbox(key: tuple[str, str], link: Callable[[], Link], worker: str | None) -> Transport:
    """A call's transport sharing this process's outbox for ``key`` ((worker address, the app's events topic)):
    created by the first call (with the :class:`Link` that ``link`` opens), reused by the next ones, dropped
    by :func:`forget_outbox` when the app ends."""
    with _OUTBOXES_LOCK:
        found = _OUTBOXES.get(key)
        if found is None:
            opened = link()
            found = _OUTBOXES[key] = (Outbox(opened.send, opened.schedule, worker, opened.close), opened)
    outbox, opened = found
    return Transport(send=opened.send, schedule=opened.schedule, worker=worker, outbox=outbox,
                     settle=opened.settle, worker_process=True)


def forget_outbox(topic: str) -> None:
    """Drop this process's outboxes for an app's events topic (the app ended), closing their links."""
    with _OUTBOXES_LOCK:
        dropped = [_OUTBOXES.pop(key)[0] for key in [key for key in _OUTBOXES if key[1] == topic]]
    for outbox in dropped:
        outbox.close()


_OUTBOXES: dict[tuple[str, str], tuple[Outbox, Link]] = {}
_OUTBOXES_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class RawBatch:
    """A call's batch as it leaves: plain entries, pickled with the others of its flush."""

    work_name: str
    call_id: str
    seq: int
    entries: list[Entry]


class WorkChannel:
    """Ordered, coalescing outbox of one running call."""

    def __init__(self, work_name: str, call_id: str, transport: Transport) -> None:
        self.work_name = work_name
        self.call_id = call_id
        self._transport = transport
        self._lock = threading.Lock()
        self._entries: list[Entry] = []
        self._set_index: dict[str, int] = {}
        self._scheduled = False
        self._seq = 0

    def set(self, attribute: str, value: Any) -> None:
        # Containers are copied now: the work may mutate them again before the flush.
        value = plain(value) if isinstance(value, (list, dict, tuple)) else value
        with self._lock:
            index = self._set_index.get(attribute)
            if index is None:
                self._set_index[attribute] = len(self._entries)
                self._entries.append(("set", attribute, value))
            else:
                self._entries[index] = ("set", attribute, value)
            kick = self._claim_flush()
        if kick:
            self._kick()

    def log(self, stream: str, text: str) -> None:
        with self._lock:
            last = self._entries[-1] if self._entries else None
            if last is not None and last[0] == "log" and last[1] == stream:
                self._entries[-1] = ("log", stream, last[2] + text)
            else:
                self._entries.append(("log", stream, text))
            kick = self._claim_flush()
        if kick:
            self._kick()

    def status(self, stage: WorkStageStatus, message: str | RemoteTraceback | None = None,
               reason: str | None = None) -> None:
        with self._lock:
            self._entries.append(("status", stage.value, message, reason, time.time()))
            # A set after a status must not merge into an entry before it.
            self._set_index.clear()
            kick = self._claim_flush()
        if kick:
            self._kick()

    def _kick(self) -> None:
        outbox = self._transport.outbox
        if outbox is not None:
            outbox.mark(self)
        else:
            self._transport.schedule(self.flush)

    @property
    def batches_sent(self) -> int:
        """How many batches this call has handed to its transport (its last sequence number)."""
        return self._seq

    def _claim_flush(self) -> bool:
        """True for the caller that must schedule the next flush (one pending flush at a time)."""
        if self._scheduled:
            return False
        self._scheduled = True
        return True

    def take_batch(self) -> RawBatch | None:
        """What is pending, as the call's next batch (None when nothing is)."""
        with self._lock:
            self._scheduled = False
            if not self._entries:
                return None
            entries, self._entries = self._entries, []
            self._set_index.clear()
            self._seq += 1
            return RawBatch(self.work_name, self.call_id, self._seq, entries)

    def take(self) -> bytes | None:
        batch = self.take_batch()
        if batch is None:
            return None
        return dumps_batch(batch.work_name, batch.call_id, batch.seq, batch.entries, self._transport.worker)

    def flush(self) -> None:
        """Send what is pending now (with an outbox: what every call sharing it has pending)."""
        outbox = self._transport.outbox
        if outbox is not None:
            outbox.flush()
            return
        batch = self.take()
        if batch is not None:
            self._transport.send(batch)

    def finish(self) -> int:
        """The call's last flush: send what is pending and return once the app has it, where the transport
        can tell (its completion, reported by another route, must not overtake it). The batches sent."""
        self.flush()
        if self._transport.settle is not None:
            self._transport.settle()
        return self.batches_sent


_GROUP = "lightnb-batches"  # marks a message carrying the batches of several calls (see dumps_group)


def loads_batch(data: bytes) -> WorkBatch:
    """A batch as the engine reads it: typed entries, a failure's traceback rendered here, where the source
    of notebook-defined code is."""
    work_name, call_id, seq, entries, worker = cloudpickle.loads(data)
    return WorkBatch(work_name, call_id, seq, tuple(_typed(entry) for entry in entries), worker)


def loads_batches(data: bytes) -> list[WorkBatch]:
    """The batches of one message: a group from an :class:`Outbox`, or a single call's batch."""
    message = cloudpickle.loads(data)
    if len(message) == 3 and message[0] == _GROUP:
        _, worker, batches = message
        return [WorkBatch(work_name, call_id, seq, tuple(_typed(entry) for entry in entries), worker)
                for work_name, call_id, seq, entries in batches]
    work_name, call_id, seq, entries, worker = message
    return [WorkBatch(work_name, call_id, seq, tuple(_typed(entry) for entry in entries), worker)]


def dumps_group(batches: list[RawBatch], worker: str | None) -> bytes:
    """One message carrying several calls' batches, in order."""
    rows = [(b.work_name, b.call_id, b.seq, b.entries) for b in batches]
    try:
        return cloudpickle.dumps((_GROUP, worker, rows))
    except Exception:  # one call's value will not pickle now: that call's batch says so, the others go as they are
        return cloudpickle.dumps((_GROUP, worker, [_picklable(*row) for row in rows]))


def _picklable(work_name: str, call_id: str, seq: int, entries: list[Entry]) -> tuple[str, str, int, list[Entry]]:
    try:
        cloudpickle.dumps(entries)
        return work_name, call_id, seq, entries
    except Exception as error:
        return work_name, call_id, seq, _unpicklable(work_name, entries, error)


def _unpicklable(work_name: str, entries: list[Entry], error: Exception) -> list[Entry]:
    safe = [e for e in entries if e[0] != "set"]
    safe.append(("log", "stderr", f"lightnb: could not send the state of {work_name}: {error!r}\n"))
    return safe


def _typed(entry: Entry) -> SetEntry | LogEntry | StatusEntry:
    kind = entry[0]
    if kind == "set":
        return SetEntry(entry[1], entry[2])
    if kind == "log":
        return LogEntry(entry[1], entry[2])
    message = entry[2].render() if isinstance(entry[2], RemoteTraceback) else entry[2]
    return StatusEntry(WorkStageStatus(entry[1]), message, entry[3], entry[4])


def dumps_batch(work_name: str, call_id: str, seq: int, entries: list[Entry], worker: str | None) -> bytes:
    try:
        return cloudpickle.dumps((work_name, call_id, seq, entries, worker))
    except Exception as error:  # a value that pickled on set but not now: report it rather than lose the batch
        return cloudpickle.dumps((work_name, call_id, seq, _unpicklable(work_name, entries, error), worker))


class WorkObserver(Observer):
    """The observer of a work while it executes: every state change goes into its channel."""

    def __init__(self, channel: WorkChannel) -> None:
        self.channel = channel
        self.stop_requested = threading.Event()
        self.applied_seq = 0
        self.acknowledged = False  # the work met its stop (WorkStopped raised at a set or check_stop)

    def mutating(self) -> Any:
        return _NO_LOCK

    def on_set(self, component: Node, attribute: str, value: Any) -> None:
        self.channel.set(attribute, value)
        if self.stop_requested.is_set():
            self.acknowledged = True
            raise WorkStopped(f"{self.channel.work_name} was asked to stop")

    def on_attach(self, parent: Node, child: Node) -> None:  # works own no components
        raise AssertionError("unreachable")

    def on_detach(self, parent: Node, child: Node) -> None:  # works own no components
        raise AssertionError("unreachable")

    def on_schedule(self, flow: LightningFlow, key: str, cron: str, start_time: Any) -> bool:
        raise AssertionError("unreachable")  # flows never run on a worker

    def on_run(self, work: LightningWork, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        raise RuntimeError(f"{work.name}.run() cannot be called from inside another work")

    def on_stop(self, work: LightningWork) -> None:
        self.stop_requested.set()

    def check_stop(self, work: LightningWork) -> None:
        if self.stop_requested.is_set():
            self.acknowledged = True
            raise WorkStopped(f"{work.name} was asked to stop")

    def on_end(self, flow: LightningFlow, message: str, failed: bool) -> None:  # flows never run on a worker
        raise AssertionError("unreachable")

    def enter_flow(self, flow: LightningFlow) -> None:
        raise AssertionError("unreachable")

    def exit_flow(self, flow: LightningFlow) -> None:
        raise AssertionError("unreachable")

    def on_output(self, component: Node, stream: str, text: str) -> None:
        self.channel.log(stream, text)


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


_NO_LOCK = _NoLock()


@dataclass
class _Running:
    work: LightningWork
    call_id: str
    observer: WorkObserver
    on_stop: list[Callable[[], None]]
    thread_id: int = 0  # the thread executing the call
    in_run: bool = False  # executing the work's run() (not lightnb's code around it, not on_exit)
    left_run: threading.Event = field(default_factory=threading.Event)
    interrupted: bool = False
    # The call handles stops itself (it registered a stop callback: a script's process, a server): it is never
    # interrupted, so its own clean-up (ending a process tree, a server thread) runs to its end.
    stop_aware: bool = False


# A call asked to stop that has not stopped at an attribute set or check_stop() after this many seconds, and
# that handles no stop itself (see _Running.stop_aware), gets WorkStopped raised in its thread (again every
# INTERRUPT_REPEAT_SECONDS while it still runs, should it swallow it): pure-Python code stops at its next
# bytecode, on any cluster — lightnb cannot end the worker processes of a cluster it did not create. Code
# blocked in a C call (time.sleep, a socket read, a long numpy operation) is interrupted only when it returns.
INTERRUPT_GRACE_SECONDS = 0.5
INTERRUPT_REPEAT_SECONDS = 1.0


def interrupted_message(work_name: str) -> str:
    return (f"lightnb: {work_name} did not stop at an attribute set or check_stop() within "
            f"{INTERRUPT_GRACE_SECONDS:g} s: its Python code is interrupted now (WorkStopped raised in its thread); "
            "code blocked in a C call (time.sleep, a socket read, a numpy operation) stops only when that call "
            "returns.\n")


def _raise_in_thread(thread_id: int, exception: type[BaseException] | None) -> None:
    """Raise ``exception`` in the thread ``thread_id`` at its next bytecode (``None``: cancel a pending one)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exception) if exception is not None else None)


class Registry:
    """The works of this process: those executing now, and each work's last object (kept between calls so
    that private attributes — a loaded model, a server handle — survive, as in a long-lived work process).

    Calls execute on their own threads while pushes and stops arrive on the worker's event loop: everything
    here is read and written under one lock, through these methods only.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], _Running] = {}
        self._objects: dict[tuple[str, str], LightningWork] = {}
        # Calls asked to stop before they started here (the stop overtook the call): they do not run.
        self._stopped_early: set[tuple[str, str, str]] = set()

    def begin(self, app_id: str, work_name: str, call_id: str, work: LightningWork,
              observer: WorkObserver) -> _Running:
        """Register a call that is about to execute. The work object kept from an earlier call of the same
        app and work (same class) is reused, with the new public values applied to it."""
        key = (app_id, work_name)
        with self._lock:
            kept = self._objects.get(key)
            if kept is not None and type(kept) is type(work):
                for attribute, value in work._public_values().items():
                    kept._apply_remote(attribute, value)
                work = kept
            self._objects[key] = work
            running = _Running(work, call_id, observer, [])
            self._running[key] = running
        return running

    def end(self, app_id: str, work_name: str, running: _Running) -> None:
        """The call of ``running`` ended (a newer call of the same work may have replaced it already)."""
        with self._lock:
            if self._running.get((app_id, work_name)) is running:
                del self._running[(app_id, work_name)]

    def was_stopped_early(self, app_id: str, work_name: str, running: _Running) -> bool:
        """Whether a stop for this call arrived before it registered; if so it is ended here (not run)."""
        with self._lock:
            stop = (app_id, work_name, running.call_id)
            if stop not in self._stopped_early:
                return False
            self._stopped_early.discard(stop)
            if self._running.get((app_id, work_name)) is running:
                del self._running[(app_id, work_name)]
            return True

    def deliver(self, app_id: str, work_name: str, call_id: str, seq: int, values: dict[str, Any]) -> None:
        """Flow → work: set attributes on a running work (pushes older than what it has are dropped)."""
        with self._lock:
            running = self._running.get((app_id, work_name))
            if running is None or running.call_id != call_id or seq <= running.observer.applied_seq:
                return
            running.observer.applied_seq = seq
            for attribute, value in values.items():
                running.work._apply_remote(attribute, value)

    def stop(self, app_id: str, work_name: str, call_id: str) -> None:
        """Ask a call to stop: a running one is told (and its stop callbacks run, outside the lock); one
        not started here yet will not run."""
        with self._lock:
            running = self._running.get((app_id, work_name))
            if running is None or running.call_id != call_id:
                self._stopped_early.add((app_id, work_name, call_id))
                return
            # Set under the lock: a callback registered after this sees the stop (see add_stop_callback).
            first = not running.observer.stop_requested.is_set()
            running.observer.stop_requested.set()
            callbacks = list(running.on_stop)
        if first and not running.stop_aware:  # a call that handles its stop itself is never interrupted
            threading.Thread(target=self._interrupt, args=(running,), name="lightnb-interrupt",
                             daemon=True).start()
        for callback in callbacks:
            try:
                callback()
            except Exception:
                traceback.print_exc()

    def enter_run(self, running: _Running) -> None:
        """The call's thread starts the work's run(): from now a stop may interrupt it."""
        with self._lock:
            if running.observer.stop_requested.is_set():  # stopped while it was getting ready
                raise WorkStopped(f"{running.observer.channel.work_name} was asked to stop")
            running.thread_id = threading.get_ident()
            running.in_run = True

    def leave_run(self, running: _Running) -> None:
        """The work's run() returned or raised: no interruption may reach lightnb's code after it."""
        with self._lock:
            running.in_run = False
            running.left_run.set()
            if running.interrupted:
                _raise_in_thread(running.thread_id, None)  # cancel one sent but not raised yet

    def _interrupt(self, running: _Running) -> None:
        """After the grace period, raise WorkStopped in the thread of a call that ignores its stop."""
        if running.left_run.wait(INTERRUPT_GRACE_SECONDS):
            return
        while True:
            with self._lock:
                # Ended, handling the stop itself, or unwinding from a WorkStopped it met: leave it be.
                if not running.in_run or running.stop_aware or running.observer.acknowledged:
                    return
                first = not running.interrupted
                running.interrupted = True
                _raise_in_thread(running.thread_id, WorkStopped)
            if first:
                running.observer.channel.log("stderr", interrupted_message(running.observer.channel.work_name))
            if running.left_run.wait(INTERRUPT_REPEAT_SECONDS):
                return

    def add_stop_callback(self, work: LightningWork, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` when the call ``work`` is executing is asked to stop; returns its unregister
        function. A no-op for a work not executing here."""
        with self._lock:
            for running in self._running.values():
                if running.work is work:
                    running.on_stop.append(callback)
                    running.stop_aware = True
                    break
            else:
                return lambda: None

        def unregister() -> None:
            with self._lock:
                if callback in running.on_stop:
                    running.on_stop.remove(callback)

        return unregister

    def running_apps(self) -> list[str]:
        """The apps with a call executing here now."""
        with self._lock:
            return sorted({app_id for app_id, _ in self._running})

    def apps_here(self) -> set[str]:
        """The apps with a call executing here or a work object kept here (not yet forgotten)."""
        with self._lock:
            return {app_id for app_id, _ in self._running} | {app_id for app_id, _ in self._objects}

    def forget_app(self, app_id: str) -> None:
        """Drop the work objects and early stops kept for an app that ended."""
        with self._lock:
            for key in [k for k in self._objects if k[0] == app_id]:
                del self._objects[key]
            self._stopped_early = {k for k in self._stopped_early if k[0] != app_id}


REGISTRY = Registry()


class HeapFreezer:
    """Keeps a busy worker process's full garbage collections short. Python's full collection scans every
    object while holding the GIL: with 500 works starting in a process it took 1–1.5 s there, stalling
    every work's reports (the 1000 × 10 Hz benchmark's lag p99 of ~300 ms came from it). While calls run,
    what exists once a call has started (its work, the imported modules) is frozen out of full collections
    (``gc.freeze``); when the process has no call running, or the frozen heap has grown past
    :attr:`ceiling` objects, it is unfrozen, so the garbage cycles of ended calls are collected then."""

    def __init__(self, ceiling: int = 1_000_000) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self.ceiling = ceiling

    def call_started(self) -> None:
        with self._lock:
            self._running += 1
            gc.freeze()

    def call_ended(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0 or gc.get_freeze_count() > self.ceiling:
                gc.unfreeze()


HEAP = HeapFreezer()


def on_stop_requested(work: LightningWork, callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` (from another thread) when the app asks ``work`` to stop — e.g. kill the process
    the work started. Returns a function that unregisters it. A no-op for a work not executing."""
    return REGISTRY.add_stop_callback(work, callback)


def execute_call(app_id: str, work_name: str, call_id: str, payload: bytes, transport: Transport,
                 ready: Callable[[], None] | None = None) -> int:
    """Run one work call here; everything it does is reported through ``transport``, its final status
    last. ``ready`` runs once the call is registered here, before it reports that it runs. Returns how many
    batches the call sent (its final report is the last)."""
    channel = WorkChannel(work_name, call_id, transport)
    # Before unpickling: a library it imports (lightning) creates logging handlers holding sys.stderr, which
    # must be the routers for what the work logs to reach its log, not the worker's terminal (or, through
    # ipykernel, whichever notebook cell runs at the time).
    capture.install()
    try:
        work, args, kwargs, app_context = cloudpickle.loads(payload)
    except BaseException as error:
        channel.status(WorkStageStatus.RUNNING)
        message = (
            f"{work_name} could not be unpacked on worker {transport.worker or 'in-process'}: "
            f"{type(error).__name__}: {error}\n{_hint_for(error)}"
        )
        channel.status(WorkStageStatus.FAILED, message, "unpickling")
        return channel.finish()
    observer = WorkObserver(channel)
    running = REGISTRY.begin(app_id, work_name, call_id, work, observer)
    work = running.work
    object.__setattr__(work, "_detached_name", work_name)
    if ready is not None:
        ready()
    channel.status(WorkStageStatus.RUNNING)
    if REGISTRY.was_stopped_early(app_id, work_name, running):
        channel.status(WorkStageStatus.STOPPED, "stopped before it started", "stop")
        return channel.finish()
    work._set_observer(observer)  # type: ignore[arg-type]
    object.__setattr__(work, "_executing", True)
    if transport.worker_process:
        HEAP.call_started()  # ended in the finally below
    try:
        with capture.route(channel.log), context.activated(app_context):
            _state_values_before_call(work, args, kwargs)
            REGISTRY.enter_run(running)
            try:
                result = work.run(*args, **kwargs)
            finally:
                REGISTRY.leave_run(running)
            if result is not None:
                raise ReturnedValue(work_name, result)
            if not observer.stop_requested.is_set():
                for value in work._public_values().values():
                    if isinstance(value, StateValue):
                        value.after_success(work)
    except WorkStopped:
        _call_on_exit(work, channel)
        channel.status(WorkStageStatus.STOPPED, "stopped by the app", "stop")
    except ReturnedValue as error:
        channel.status(WorkStageStatus.FAILED, str(error), "invalid_return_value")
    except BaseException as error:
        if observer.stop_requested.is_set():
            # Stopping killed what the work was waiting on (its subprocess): that is a stop, not a failure.
            _call_on_exit(work, channel)
            channel.status(WorkStageStatus.STOPPED, "stopped by the app", "stop")
        else:
            # Rendered on the app's side, which has the source of code defined in the notebook.
            channel.status(WorkStageStatus.FAILED, RemoteTraceback.capture(error), "user_exception")
    else:
        if observer.stop_requested.is_set():
            _call_on_exit(work, channel)
            channel.status(WorkStageStatus.STOPPED, "stopped by the app", "stop")
        else:
            channel.status(WorkStageStatus.SUCCEEDED)
    finally:
        object.__setattr__(work, "_executing", False)
        work._set_observer(None)
        REGISTRY.end(app_id, work_name, running)
        if transport.worker_process:
            HEAP.call_ended()
    return channel.finish()


def _state_values_before_call(work: LightningWork, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, StateValue):
            value.before_call(work, as_argument=True)
    for value in work._public_values().values():
        if isinstance(value, StateValue):
            value.before_call(work, as_argument=False)


def _call_on_exit(work: LightningWork, channel: WorkChannel) -> None:
    try:
        with capture.route(channel.log):
            work.on_exit()
    except BaseException:
        channel.log("stderr", f"{work.name}.on_exit() failed:\n{traceback.format_exc()}")


class ReturnedValue(Exception):
    def __init__(self, work_name: str, value: Any) -> None:
        super().__init__(
            f"{work_name}.run() returned a value ({type(value).__name__}); a work cannot return values "
            "through a running app. Set the result as an attribute of the work (self.result = ...), or wrap "
            "a large object in lightnb.Payload and set that."
        )


def _hint_for(error: BaseException) -> str:
    if isinstance(error, ModuleNotFoundError):
        return (
            f"The worker cannot import {error.name!r}. Install it on the workers, or keep the code in the "
            "notebook / app script (lightnb ships local modules it can find by value)."
        )
    return "The work's class or its arguments need something this worker does not have."
