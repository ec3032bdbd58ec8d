"""Warm works: a work's later calls go straight to a warm executor on its worker, not through the scheduler.

A work's first call is a Dask task (:func:`lightnb.runtime.dask.run_on_worker`). As soon as it reports from
a worker, the app places a :class:`WarmHost` there — a Dask actor, one per app and worker process. A later
call of a work whose previous worker has a host is sent to that host directly (one message client → worker
on a pooled connection, the scheduler not involved): the host runs it on a thread of its own with the same
:func:`~lightnb.runtime.worker.execute_call` a task runs, so its reports, logs, tracebacks, pushes and
stops travel exactly as a task's do. The message stays open until the call has ended, and answers with how
many batches the call sent, so the client knows when the call's final report has reached it.

What holds, as for tasks:

* **At most once.** Nothing retries a warm call. If the connection breaks while the call runs (the worker
  died), the call fails once, with the same message as a task on a dead worker. Only a call that provably
  never reached the host — the connection could not be opened, the host was gone — is sent as a task
  instead.
* **Stop, push, hot reload**: the call's payload carries the work pickled now (an edited class included);
  pushes and stops travel on the app's push topic as for tasks, and the worker's registry applies them.
* **Nothing leaks**: the hosts are released when the app closes (the worker drops the actor); a call that
  ignored its stop ends with its worker process, as a task does (see ``DaskExecutor._end_stragglers``).

Where warm calls are not used: a cluster that may outlive this process (an address, a client, a cluster not
started in this process). There a call must be a task with a deterministic key, so that a resumed durable
app can re-attach to it; a warm call lives only as long as this process's client holds its host.
``LIGHTNB_WARM_WORKS=0`` turns warm calls off everywhere.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .direct import Route
from .protocol import CallLost, CallSpec, Emit, WorkBatch

ENV = "LIGHTNB_WARM_WORKS"
# How long the client waits for a warm call's final report after the call's answer overtook it.
FINAL_REPORT_SECONDS = 10.0
# How long opening the connection to a host may take before the call goes as a task instead.
CONNECT_SECONDS = 2.0


def enabled_for(connection: Any) -> bool:
    """Whether an app on ``connection`` sends later calls to warm hosts: only on a cluster that ends with
    this process (see ``Connection.ends_here``), unless turned off."""
    if os.environ.get(ENV, "").strip().lower() in ("0", "off", "no", "false"):
        return False
    return bool(connection.ends_here)


# -- decisions (pure) -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Answered:
    """The host answered: the call ended there after sending ``batches`` batches."""

    batches: int


@dataclass(frozen=True, slots=True)
class NotDelivered:
    """The call never reached a host (no connection, no host there): it can still run as a task."""

    reason: str


@dataclass(frozen=True, slots=True)
class Broken:
    """The connection broke while the call was on the host: it may have run, so it is not run again."""

    error: BaseException


Outcome = Answered | NotDelivered | Broken


def lost_message(work_name: str, outcome: Broken) -> str:
    return (f"the worker process running {work_name} died (the process was killed or crashed, e.g. out of "
            f"memory); the call is not run again. The connection to it broke: "
            f"{type(outcome.error).__name__}: {outcome.error}")


def final_report_missing(work_name: str) -> str:
    return (f"{work_name} finished without its final report reaching the app (the connection to the cluster "
            "was interrupted)")


# -- the client side --------------------------------------------------------------------------------------
@dataclass
class _Host:
    worker: str
    future: Any  # the actor's Dask future: the host lives while it is held

    @property
    def ready(self) -> bool:
        return self.future.status == "finished"


@dataclass
class WarmCall:
    """A call sent to a host, until its answer (and its final report) came back."""

    spec: CallSpec
    worker: str
    _answered: threading.Event = field(default_factory=threading.Event)

    def done(self) -> bool:
        """Whether the call no longer runs on the host (it ended there, or never got there)."""
        return self._answered.is_set()


class WarmWorks:
    """The app's hosts and the calls running on them (client side). ``submit_task`` sends a call the
    ordinary way; ``seen`` gives how many batches of one execution reached the app."""

    def __init__(self, app_id: str, client: Any, emit: Emit, submit_task: Callable[[CallSpec], None],
                 seen: Callable[[tuple[str, str, str | None]], int], route: Route | None = None) -> None:
        self.app_id = app_id
        self.client = client
        self._route = route  # where the hosts send the calls' batches directly (see runtime/direct.py)
        self._emit = emit
        self._submit_task = submit_task
        self._seen = seen
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        self._calls: dict[tuple[str, str], WarmCall] = {}
        # (work, call id, worker) → the number of batches the call sent, while its final report is awaited
        self._awaiting: dict[tuple[str, str, str | None], tuple[int, WarmCall]] = {}
        self._closed = False

    # -- hosts ------------------------------------------------------------------------------------------
    def on_worker(self, worker: str) -> None:
        """A call of the app reported from ``worker``: place a host there (once)."""
        with self._lock:
            if self._closed or worker in self._hosts:
                return
            self._hosts[worker] = _Host(worker, None)
        future = self.client.submit(WarmHost, self.app_id, actor=True, workers=[worker], allow_other_workers=False,
                                    pure=False, key=f"lightnb-warm-host-{self.app_id}-{worker}")
        with self._lock:
            self._hosts[worker].future = future
            if self._closed:
                future.cancel()

    def host_on(self, worker: str | None) -> _Host | None:
        with self._lock:
            host = self._hosts.get(worker) if worker is not None else None
        if host is None or host.future is None or not host.ready:
            return None
        return host

    def _drop_host(self, worker: str) -> None:
        with self._lock:
            host = self._hosts.pop(worker, None)
        if host is not None and host.future is not None:
            host.future.release()

    # -- calls ------------------------------------------------------------------------------------------
    def submit(self, spec: CallSpec) -> bool:
        """Send ``spec`` to the host on its previous worker; False when there is none ready (send a task)."""
        host = self.host_on(spec.preferred_worker)
        if host is None or spec.resources:
            return False
        call = WarmCall(spec, host.worker)
        with self._lock:
            self._calls[spec.work_name, spec.call_id] = call
        self.client.loop.add_callback(self._dispatch, call, host.future.key)
        return True

    def running(self) -> list[WarmCall]:
        with self._lock:
            return [call for call in self._calls.values() if not call.done()]

    async def _dispatch(self, call: WarmCall, host_key: str) -> None:
        from distributed.core import send_recv

        spec = call.spec
        pool = self.client.rpc
        try:
            comm = await pool.connect(call.worker, timeout=CONNECT_SECONDS)
        except Exception as error:
            self._ended(call, NotDelivered(f"{type(error).__name__}: {error}"))
            return
        try:
            answer = await send_recv(comm, op="actor_execute", actor=host_key, function="call",
                                     args=[spec.work_name, spec.call_id, spec.payload, self._route],
                                     kwargs={})
        except KeyError as error:  # the worker has no such host (it was released): the call did not start
            comm.abort()
            self._ended(call, NotDelivered(f"no warm host on {call.worker}: {error}"))
            return
        except BaseException as error:
            comm.abort()
            self._ended(call, Broken(error))
            return
        pool.reuse(call.worker, comm)
        if answer.get("status") != "OK":
            self._ended(call, Broken(answer.get("exception") or RuntimeError("the warm host failed")))
        else:
            self._ended(call, Answered(int(answer["result"])))

    def _ended(self, call: WarmCall, outcome: Outcome) -> None:
        """On the client's event loop (as the app's batches are): act on how the call's message ended."""
        spec = call.spec
        call._answered.set()
        if isinstance(outcome, NotDelivered) and not self._closed:
            self._forget(call)
            self._drop_host(call.worker)
            self._submit_task(spec)
            return
        if isinstance(outcome, Broken):
            self._drop_host(call.worker)
            self._finish(call, None if self._closed else CallLost(spec.work_name, spec.call_id,
                                                                  lost_message(spec.work_name, outcome)))
            return
        assert isinstance(outcome, Answered)
        key = (spec.work_name, spec.call_id, call.worker)
        with self._lock:  # batches reach the app on the client's loop, or on the direct route's thread
            arrived = self._closed or self._seen(key) >= outcome.batches
            if not arrived:
                # The answer came straight from the worker; the final report by another route: wait for it.
                self._awaiting[key] = (outcome.batches, call)
        if arrived:
            self._finish(call, None)
            return
        self.client.loop.call_later(FINAL_REPORT_SECONDS, self._give_up_on, key)

    def on_batch(self, batch: WorkBatch) -> None:
        """A batch reached the app: it may be the final report awaited."""
        key = (batch.work_name, batch.call_id, batch.worker)
        with self._lock:
            waiting = self._awaiting.get(key)
            if waiting is None or batch.seq < waiting[0]:
                return
            del self._awaiting[key]
        self._finish(waiting[1], None)

    def _give_up_on(self, key: tuple[str, str, str | None]) -> None:
        with self._lock:
            waiting = self._awaiting.pop(key, None)
        if waiting is not None:
            spec = waiting[1].spec
            self._finish(waiting[1], None if self._closed else CallLost(
                spec.work_name, spec.call_id, final_report_missing(spec.work_name), "done"))

    def _finish(self, call: WarmCall, lost: CallLost | None) -> None:
        self._forget(call)
        if lost is not None:
            self._emit(lost)

    def _forget(self, call: WarmCall) -> None:
        with self._lock:
            if self._calls.get((call.spec.work_name, call.spec.call_id)) is call:
                del self._calls[call.spec.work_name, call.spec.call_id]

    def close(self) -> None:
        """Release the hosts (the workers drop them). Calls still running were stopped before, or their
        workers ended (``DaskExecutor._end_stragglers``)."""
        with self._lock:
            self._closed = True
            hosts, self._hosts = list(self._hosts.values()), {}
        futures = [host.future for host in hosts if host.future is not None]
        if futures:
            try:
                self.client.cancel(futures, force=True)
            except Exception:
                pass


# -- on the worker ----------------------------------------------------------------------------------------
class WarmHost:
    """The warm executor of one app on one worker process (a Dask actor): runs the app's calls sent here,
    each on a thread of its own, and answers each when it has ended."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id

    async def call(self, work_name: str, call_id: str, payload: bytes, route: Route | None = None) -> int:
        from distributed import get_worker

        from .dask import _subscribe, app_transport
        from .worker import execute_call

        worker = get_worker()
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()
        # Shared with the app's other calls in this process (tasks and warm calls alike).
        transport = app_transport(worker, self.app_id, route)
        app_id = self.app_id
        sent = [0]

        def run() -> None:
            try:
                sent[0] = execute_call(app_id, work_name, call_id, payload, transport,
                                       ready=lambda: _subscribe(app_id, worker))
            finally:
                try:
                    loop.call_soon_threadsafe(_resolve, ended)
                except RuntimeError:
                    pass  # the worker's loop is closing: nobody waits for the answer any more

        # The copied context carries the worker (``get_worker``/``get_client`` work in the call, as in a task).
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(run,), name=f"lightnb-warm-{work_name}", daemon=True).start()
        await ended
        return sent[0]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
