"""The Dask executor: a work's first call is a task on a worker process; its later calls go to the app's
warm host on that worker, straight from the client (see :mod:`lightnb.runtime.warmworks`).

Work → flow: the running work's batches go out with ``Worker.log_event`` on the app's events topic; the
client is subscribed to it (pushed, ordered, ~2 ms). Flow → work: the client publishes on the app's push
topic, to which each worker process running a work of the app subscribes once. A work's call *secedes* from
the worker's thread pool, so long jobs never starve other works. A call runs at most once: the embedded
cluster allows no retries, and on other clusters a re-run after a worker death is refused by a claim kept
on the scheduler.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable
from typing import Any

import cloudpickle

from ..core.events import Logged
from . import warm
from .cluster import CONNECT_TIMEOUT_SECONDS, Connection, connect, is_explicit
from .direct import ENV as DIRECT_ENV
from .direct import DirectStreamWarning, Receiver, Route, Sender, choose_route
from .protocol import CallLost, CallSpec, Emit, Executor, RuntimeFailed, WorkBatch
from .warm import WARM
from .warmworks import WarmCall, WarmWorks
from .warmworks import enabled_for as warm_works_enabled_for
from .worker import REGISTRY, Link, Transport, execute_call, forget_outbox, loads_batches, transport_with_outbox

# How often the client's connection is looked at (a lost scheduler ends the app within this + the timeout).
WATCH_SECONDS = 0.5
# How long a scheduler lightnb did not start may stay silent (see DaskExecutor._watch); $LIGHTNB_SCHEDULER_SILENCE.
SCHEDULER_SILENCE_SECONDS = 10.0
SILENCE_ENV = "LIGHTNB_SCHEDULER_SILENCE"
# How long closing a client whose scheduler is lost may wait for it (it cannot answer).
LOST_CLOSE_SECONDS = 0.5
# The scheduler's event topic that says which worker it removed, with which tasks.
CLUSTER_TOPIC = "all"
# How long closing an app on a shared embedded cluster waits for its stopped calls' tasks to end before it
# restarts the worker processes still running them.
STRAGGLER_WAIT_SECONDS = 1.0


def events_topic(app_id: str) -> str:
    return f"lightnb-events-{app_id}"


def push_topic(app_id: str) -> str:
    return f"lightnb-push-{app_id}"


def machine_has(resource: str) -> bool:
    """Whether this machine has ``resource`` although the embedded cluster does not offer it as a Dask
    resource: a GPU (an NVIDIA device node) is used by a work of the embedded cluster all the same."""
    return resource == "GPU" and bool(glob.glob("/dev/nvidia[0-9]*"))


class ResourceFallbackWarning(UserWarning):
    """A work asked for resources the embedded cluster lacks and runs on what the machine has."""


class DaskExecutor(Executor):
    """Runs work calls as tasks on a Dask cluster (see :mod:`lightnb.runtime.cluster` for which)."""

    def __init__(self, app_id: str, cluster: Any = None, storage: str | None = None, durable: bool = False) -> None:
        self.app_id = app_id
        self._durable = durable  # a named app: a resumed one reads its works' reports on the scheduler
        self._cluster_arg = cluster
        self._storage = storage
        self.connects_eagerly = cluster is not WARM and is_explicit(cluster)
        self.connection: Connection | None = None
        self._emit: Emit | None = None
        self._futures: dict[tuple[str, str], tuple[CallSpec, Any]] = {}  # (work name, call id) → ...
        self._calls_by_key: dict[str, tuple[str, str]] = {}  # task key → (work name, call id)
        self._workers: dict[tuple[str, str], str] = {}  # (work name, call id) → the worker running it
        self._lock = threading.Lock()
        self._outbox: deque[bytes] = deque()
        self._sending = False
        self._closed = False
        self._lost = False  # the connection to the scheduler is gone for good
        # (work, call id, worker) → the last batch number emitted: one execution's batches, each once
        self._seen: dict[tuple[str, str, str | None], int] = {}
        self._history: list[Any] | None = None  # the app's earlier events (resuming)
        self._hears_removals = False
        self._fallbacks: set[tuple[str, tuple[str, ...]]] = set()  # (work, resources) it was told it lacks
        self._warm: WarmWorks | None = None  # later calls straight to a warm host (see runtime/warmworks.py)
        self._receiver: Receiver | None = None  # works' batches straight from their workers (runtime/direct.py)

    @property
    def description(self) -> str:
        return self.connection.description if self.connection else "not connected"

    @property
    def client(self) -> Any:
        assert self.connection is not None, "the executor is not started"
        return self.connection.client

    def start(self, emit: Emit) -> None:
        self._emit = emit
        if self._cluster_arg is WARM:
            self.connection = warm.acquire(self.app_id)
        else:
            self.connection = connect(self._cluster_arg)
        if not self.connection.embedded:
            from .probe import check_workers

            try:
                check_workers(self.connection.client, _local_folder(self._storage))
            except BaseException:
                self.connection.close()  # only what lightnb opened for this app
                raise
        choice = choose_route(os.environ.get(DIRECT_ENV, ""), self.connection.ends_here, self._durable,
                              self.client.scheduler.address or "")
        if choice.why_not is not None:
            warnings.warn(choice.why_not, DirectStreamWarning, stacklevel=2)
        if choice.host is not None:
            self._receiver = Receiver(self._on_message, choice.host)
        if warm_works_enabled_for(self.connection):
            self._warm = WarmWorks(self.app_id, self.client, emit, self._submit_task, self._seen_batches,
                                   self.route)
        # Batches through the scheduler: every route's on a cluster that may outlive this process (a resumed
        # app reads the earlier ones there), a worker's that cannot reach this process directly.
        self.client.subscribe_topic(events_topic(self.app_id), self._on_event)
        # A cluster lightnb did not start: hear which worker the scheduler removes (its host may have gone)
        # and with which tasks. A client the user gave is left alone (one handler per topic and client).
        self._hears_removals = not self.connection.embedded and self.connection.owns_client
        if self._hears_removals:
            self.client.subscribe_topic(CLUSTER_TOPIC, self._on_cluster_event)
        threading.Thread(target=self._watch, name=f"lightnb-{self.app_id}-watch", daemon=True).start()

    def _watch(self) -> None:
        """End the app with a clear message when the scheduler is lost: the client's connection closed for
        good (Dask's client tries to reconnect for its connect timeout, then closes), or — on a cluster lightnb
        did not start — the scheduler has not answered a ping for ``scheduler_silence()`` seconds (a cut link
        drops packets silently: TCP would wait for minutes). A shorter silence is ridden out: the connections
        stay open and deliver what was held back, so no call is lost or run twice."""
        client = self.client
        pinging = not (self.connection is not None and self.connection.embedded)
        silence = scheduler_silence()
        last_answer = time.monotonic()
        while not self._closed:
            time.sleep(WATCH_SECONDS)
            if self._closed:
                return
            if client.status in ("closing", "closed"):
                self._declare_lost(self._lost_message())
                return
            if not pinging:
                continue
            if _ping(client, timeout=max(WATCH_SECONDS, min(2.0, silence / 2))):
                last_answer = time.monotonic()
            elif scheduler_lost(last_answer, time.monotonic(), silence) and not self._closed:
                self._declare_lost(self._silent_message(silence))
                return

    def _declare_lost(self, message: str) -> None:
        if self._closed:
            return
        self._lost = True
        assert self._emit is not None
        self._emit(RuntimeFailed(message))
        with self._lock:
            running = list(self._futures)
        for work_name, call_id in running:  # lost with the scheduler, not stopped: nothing could reach them
            self._emit(CallLost(work_name, call_id, message))

    def _scheduler_address(self) -> str:
        try:
            return str(self.client.scheduler.address)
        except Exception:
            return self.description

    def _silent_message(self, silence: float) -> str:
        return (f"lost the scheduler at {self._scheduler_address()}: it has not answered for {silence:g} s (its "
                "host, or the network between it and this machine, is down or it stopped). The works running "
                "there are lost to this app. Check the scheduler's host and network, then start the app again "
                "(a named app can resume: resume=True).")

    def _lost_message(self) -> str:
        return (f"lost the scheduler at {self._scheduler_address()}: the connection closed and did not come "
                f"back within {CONNECT_TIMEOUT_SECONDS} s. The works running there are lost to this app. Check "
                "the scheduler, then start the app again (a named app can resume: resume=True).")

    @property
    def route(self) -> Route | None:
        """Where workers send the app's batches directly; None: through the scheduler."""
        return self._receiver.route if self._receiver is not None else None

    def _on_event(self, event: tuple[float, Any]) -> None:
        self._on_message(event[1])

    def _on_message(self, data: bytes) -> None:
        """One message of a worker process (from either route): the batches it carries, in order."""
        if self._emit is not None and not self._closed:
            for batch in loads_batches(data):
                self._emit_batch(batch)

    def _on_cluster_event(self, event: tuple[float, Any]) -> None:
        """The scheduler removed a worker (its host stopped answering, or its process died): the calls it ran
        are lost, said at once — Dask may re-run them elsewhere (which lightnb refuses), or have nowhere to run
        them (a resource only that worker offered), which would leave the app waiting."""
        if self._closed or self._emit is None:
            return
        with self._lock:
            running = {future.key: key for key, (_, future) in self._futures.items()}
        lost = calls_lost_with_worker(event[1], running)
        for work_name, call_id, worker in lost:
            self._emit(CallLost(work_name, call_id, _worker_lost_message(work_name, worker)))
        if lost:
            with self._lock:
                futures = [self._futures[work, call][1] for work, call, _ in lost if (work, call) in self._futures]
            # Not run again anywhere: a re-run would be refused, one with nowhere to run would wait for ever.
            self.client.loop.add_callback(self.client._cancel, futures, force=True)

    def _emit_batch(self, batch: WorkBatch) -> None:
        assert self._emit is not None
        key = (batch.work_name, batch.call_id, batch.worker)
        with self._lock:
            if batch.seq <= self._seen.get(key, 0):
                return  # already emitted (a resumed app hears some batches live and again from the history)
            self._seen[key] = batch.seq
            if batch.worker is not None and (batch.work_name, batch.call_id) not in self._workers:
                self._workers[batch.work_name, batch.call_id] = batch.worker
        self._emit(batch)
        if self._warm is not None:
            if batch.worker is not None:
                self._warm.on_worker(batch.worker)
            self._warm.on_batch(batch)

    def _seen_batches(self, key: tuple[str, str, str | None]) -> int:
        with self._lock:
            return self._seen.get(key, 0)

    def task_key(self, work_name: str, call_id: str) -> str:
        """The Dask key of one execution of a call: the same in every process of the app (resuming)."""
        return f"lightnb-{self.app_id}-{work_name}-{call_id}"

    # -- calls --------------------------------------------------------------------------------------------
    def submit(self, spec: CallSpec) -> None:
        task = self._as_task(spec)
        if task is not None:
            self._submit_task(task)

    def submit_many(self, specs: list[CallSpec]) -> None:
        """Calls asked for together go as one graph per (resources, preferred worker): the scheduler takes
        a thousand calls in one update, not in a thousand."""
        groups: dict[tuple[tuple[tuple[str, Any], ...], str | None], list[CallSpec]] = {}
        for spec in specs:
            task = self._as_task(spec)
            if task is not None:
                groups.setdefault((tuple(sorted((task.resources or {}).items())), task.preferred_worker),
                                  []).append(task)
        for group in groups.values():
            if len(group) == 1:
                self._submit_task(group[0])
            else:
                self._submit_tasks(group)

    def _as_task(self, spec: CallSpec) -> CallSpec | None:
        """The call to send as a Dask task; None when it went to a warm host or cannot run here (said)."""
        if self._warm is not None and self._warm.submit(spec):
            return None  # to the warm host on its previous worker
        missing = self._missing_resources(spec.resources)
        if missing and self.connection is not None and self.connection.embedded:
            # Developing locally: the embedded cluster is this machine, so the work runs on what it has.
            return self._without_missing_resources(spec)
        if missing:
            assert self._emit is not None
            self._emit(CallLost(spec.work_name, spec.call_id, missing, "resources"))
            return None
        return spec

    def _task_options(self, spec: CallSpec) -> tuple[bool, dict[str, Any]]:
        """Whether calls run at most once by the cluster's own rules, and the Dask options of ``spec``'s task."""
        # An embedded cluster allows no retries (a call runs at most once); elsewhere the worker claims it.
        at_most_once = self.connection is not None and self.connection.embedded
        # Back to the worker of its previous call, where its private attributes live; any worker if gone.
        workers = [spec.preferred_worker] if spec.preferred_worker else None
        return at_most_once, {"pure": False, "retries": 0, "resources": spec.resources or None, "workers": workers,
                              "allow_other_workers": workers is not None}

    def _submit_task(self, spec: CallSpec) -> None:
        """Send a call as a Dask task (a first call, or one without a warm host)."""
        at_most_once, options = self._task_options(spec)
        future = self.client.submit(
            run_on_worker, spec.app_id, spec.work_name, spec.call_id, spec.payload, not at_most_once, self.route,
            key=self.task_key(spec.work_name, spec.call_id), **options,
        )
        self._track([(spec, future)], at_most_once)

    def _submit_tasks(self, specs: list[CallSpec]) -> None:
        """Send calls of the same resources and preferred worker as one graph."""
        at_most_once, options = self._task_options(specs[0])
        futures = self.client.map(
            run_on_worker, [s.app_id for s in specs], [s.work_name for s in specs], [s.call_id for s in specs],
            [s.payload for s in specs], [not at_most_once] * len(specs), [self.route] * len(specs),
            key=[self.task_key(s.work_name, s.call_id) for s in specs], **options,
        )
        self._track(list(zip(specs, futures, strict=True)), at_most_once)

    def _track(self, sent: list[tuple[CallSpec, Any]], at_most_once: bool) -> None:
        if not at_most_once:
            from distributed import fire_and_forget

            # On a cluster that outlives this process the call must too: a resumed app re-attaches to it.
            fire_and_forget([future for _, future in sent])
        with self._lock:
            for spec, future in sent:
                self._futures[spec.work_name, spec.call_id] = (spec, future)
                self._calls_by_key[future.key] = (spec.work_name, spec.call_id)
        for _, future in sent:
            future.add_done_callback(self._on_done)

    # -- resuming -----------------------------------------------------------------------------------------
    def can_reattach(self, work_name: str, call_id: str) -> bool:
        if self.connection is None or self.connection.embedded:
            return False  # a cluster this process started died with the process that ran the call
        key = self.task_key(work_name, call_id)

        def state(dask_scheduler: Any, key: str = key) -> str | None:
            task = dask_scheduler.tasks.get(key)
            return None if task is None else task.state

        if self.client.run_on_scheduler(state) in ("processing", "waiting", "queued", "no-worker"):
            return True
        # It ended while nobody listened: its final report is in the app's history on the scheduler.
        return any(batch.call_id == call_id and batch.work_name == work_name and any(
            getattr(entry, "stage", None) is not None and entry.stage.is_finished for entry in batch.entries)
            for batch in self._earlier_batches())

    def reattach(self, work_name: str, call_id: str) -> None:
        from distributed import Future

        key = self.task_key(work_name, call_id)
        future = Future(key, self.client)
        spec = CallSpec(self.app_id, work_name, call_id, b"")
        with self._lock:
            self._futures[work_name, call_id] = (spec, future)
            self._calls_by_key[future.key] = (work_name, call_id)
        for batch in self._earlier_batches():  # what it reported while nobody listened, in order
            if batch.work_name == work_name and batch.call_id == call_id:
                self._emit_batch(batch)
        future.add_done_callback(self._on_done)

    def _earlier_batches(self) -> list[Any]:
        if self._history is None:
            self._history = [batch for _, data in self.client.get_events(events_topic(self.app_id))
                             for batch in loads_batches(data)]
        return self._history

    def _offered_resources(self) -> dict[str, float]:
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        offered: dict[str, float] = {}
        for info in workers.values():
            for name, amount in (info.get("resources") or {}).items():
                offered[name] = max(offered.get(name, 0), amount)
        return offered

    def _without_missing_resources(self, spec: CallSpec) -> CallSpec:
        """``spec`` asking only for what the embedded cluster's workers offer; the first time a work is
        placed so, a warning names the work and what it lacks (in its log and as a Python warning)."""
        offered = self._offered_resources()
        lacking = {k: v for k, v in spec.resources.items() if offered.get(k, 0) < v}
        kept = {k: v for k, v in spec.resources.items() if k not in lacking}
        key = (spec.work_name, tuple(sorted(lacking)))
        if key not in self._fallbacks and not all(machine_has(name) for name in lacking):
            self._fallbacks.add(key)
            need = ", ".join(f"{k}={v:g}" for k, v in lacking.items())
            message = (f"{spec.work_name} asks for {need} (its CloudCompute), which no worker of the embedded "
                       f"cluster offers and this machine lacks: developing locally, it runs on what the machine "
                       f"has. On a cluster whose workers offer {need} (e.g. `dask worker "
                       f"... --resources \"{need.replace(', ', ' ')}\"`) it gets them.")
            warnings.warn(message, ResourceFallbackWarning, stacklevel=2)
            assert self._emit is not None
            self._emit(Logged(spec.work_name, "stderr", f"lightnb: {message}\n"))
        return dataclasses.replace(spec, resources=kept)

    def _missing_resources(self, resources: dict[str, float]) -> str | None:
        if not resources:
            return None
        offered = self._offered_resources()
        lacking = {k: v for k, v in resources.items() if offered.get(k, 0) < v}
        if not lacking:
            return None
        have = ", ".join(f"{k}={v}" for k, v in offered.items()) or "none"
        need = ", ".join(f"{k}={v}" for k, v in lacking.items())
        return (f"no worker of {self.description} offers the resources this work's CloudCompute asks for "
                f"({need}; workers offer: {have}). Start workers with `dask worker ... --resources "
                f"\"{need.replace(', ', ' ')}\"`, or use a CloudCompute these workers can serve.")

    def _on_done(self, future: Any) -> None:
        with self._lock:
            found = self._calls_by_key.get(future.key)  # a look-up, not a scan: 1000 calls end in O(1000)
            entry = self._futures.get(found) if found is not None else None
            if entry is None or entry[1] is not future:
                found = None
            else:
                del self._calls_by_key[future.key]
            spec = self._futures.pop(found)[0] if found is not None else None
            if found is not None:
                self._workers.pop(found, None)
        if spec is None or self._emit is None or self._closed:
            return
        call_id = spec.call_id
        if self._lost or self.client.status != "running":  # the client gave up its futures with the scheduler
            self._emit(CallLost(spec.work_name, call_id, self._lost_message()))
        elif future.cancelled():
            self._emit(CallLost(spec.work_name, call_id, "stopped before it started", "stop"))
        elif future.status == "error":
            self._emit(CallLost(spec.work_name, call_id, _describe_loss(spec.work_name, future.exception())))
        else:
            # The call's final report travelled ahead of the task's completion on the same ordered streams
            # (worker → scheduler → this client), so the loop has it by now; if not, it was lost.
            self._emit(CallLost(spec.work_name, call_id, f"{spec.work_name} finished without its final report "
                                "reaching the app (the connection to the cluster was interrupted)", "done"))

    def push(self, work_name: str, call_id: str, message: dict[str, Any]) -> None:
        self._publish(cloudpickle.dumps(("set", work_name, call_id, message)))

    def stop(self, work_name: str, call_id: str, started: bool) -> None:
        if self._lost:
            return  # nothing can reach the works any more
        self._publish(cloudpickle.dumps(("stop", work_name, call_id)))
        if started:
            return  # it stops where it runs (and runs on_exit there); its task then ends by itself
        with self._lock:
            entry = self._futures.get((work_name, call_id))
        if entry is not None:
            # Not started yet: cancelling keeps it from starting. If it was just starting, the stop message
            # above reaches it first (the worker refuses to start a call it was told to stop).
            entry[1].cancel(force=True)  # fire-and-forget calls too

    def _publish(self, data: bytes) -> None:
        if self._lost:
            return
        """Publish on the push topic, in order: one RPC at a time, from the client's event loop."""
        self.client.loop.add_callback(self._enqueue, data)

    def _enqueue(self, data: bytes) -> None:
        self._outbox.append(data)
        if not self._sending:
            self._sending = True
            self.client.loop.add_callback(self._drain)

    async def _drain(self) -> None:
        try:
            while self._outbox:
                batch = list(self._outbox)
                self._outbox.clear()
                for data in batch:
                    await self.client.scheduler.log_event(topic=push_topic(self.app_id), msg=data)
        except Exception:
            if not self._closed:  # while closing, the client may go away under a last stop message
                raise
        finally:
            self._sending = False

    def close(self) -> None:
        if self.connection is None:
            return
        with self._lock:
            pending = [(key, future) for key, (_, future) in self._futures.items()]
        if self._warm is not None:
            pending += [((call.spec.work_name, call.spec.call_id), call) for call in self._warm.running()]
        self._closed = True  # batches arriving from now on are dropped: the route's listener can go
        if self._receiver is not None:
            self._receiver.close()
        client = self.client
        if self._lost:  # nothing reaches the scheduler: only close what lightnb opened, without waiting on it
            if self.connection.owns_client:
                self.connection.owns_client = False
                try:
                    client.close(timeout=LOST_CLOSE_SECONDS)
                except Exception:
                    pass
            self.connection.close()
            return
        try:
            client.unsubscribe_topic(events_topic(self.app_id))
            if self._hears_removals:
                client.unsubscribe_topic(CLUSTER_TOPIC)
            if not self.connection.owns_cluster:
                self._end_stragglers(pending)
            if self._warm is not None:
                self._warm.close()
            for _, future in pending:
                if not isinstance(future, WarmCall):
                    future.cancel(force=True)  # fire-and-forget calls too
            if not self.connection.owns_cluster:
                client.run(forget_app, self.app_id, push_topic(self.app_id))
        except Exception:
            pass
        self.connection.close()

    def _end_stragglers(self, pending: list[tuple[tuple[str, str], Any]]) -> None:
        """On an embedded cluster the app does not own (the warm one), a call still running after the stop
        (a work that ignores stop requests) would outlive its app: its worker process is ended (and replaced by
        a fresh one), unless a call of another app runs there too (then it is left, with a warning)."""
        if self.connection is None or not self.connection.embedded:
            return  # a cluster lightnb did not set up: its workers are not lightnb's to end
        running = [(key, future) for key, future in pending if not future.done()]
        deadline = time.monotonic() + STRAGGLER_WAIT_SECONDS
        while running and time.monotonic() < deadline:  # a stopped call's task ends just after its report
            time.sleep(0.01)
            running = [(key, future) for key, future in running if not future.done()]
        workers = {call.worker if isinstance(call, WarmCall) else self._workers.get(key)
                   for key, call in running} - {None}
        if not workers:
            return
        # Forgotten by the scheduler first, so that ending the worker cannot make it run the call elsewhere.
        self.client.cancel([future for _, future in running if not isinstance(future, WarmCall)], force=True)
        apps = self.client.run(apps_running_here, workers=list(workers))
        alone = [worker for worker in workers if set(apps.get(worker, ())) <= {self.app_id}]
        shared = workers - set(alone)
        if shared:
            warnings.warn(f"works of app {self.app_id} ignored the stop request and run on worker(s) "
                          f"{sorted(shared)} together with other apps' works: they were left running",
                          stacklevel=2)
        for worker in alone:
            warm.end_worker(worker)


def _local_folder(storage: str | None) -> str | None:
    """The folder of a local storage root (the default one included), None for a URL."""
    from .context import resolve_storage

    url = resolve_storage(storage)
    if url.startswith("file://"):
        return url[len("file://"):]
    return None if "://" in url else url


def calls_lost_with_worker(message: Any, running: dict[Any, tuple[str, str]]) -> list[tuple[str, str, str]]:
    """The calls (work, call id, worker) of ``running`` (task key → (work, call id)) that a scheduler event
    says were processing on a worker it removed."""
    if not isinstance(message, dict) or message.get("action") != "remove-worker":
        return []
    worker = str(message.get("worker", "a worker"))
    return [(*running[key], worker) for key in message.get("processing-tasks") or () if key in running]


def _worker_lost_message(work_name: str, worker: str) -> str:
    return (f"the worker process running {work_name} died or its host stopped answering: lost the worker "
            f"{worker}, which the scheduler removed (a cut link, a crash, a process killed); the call is not run "
            "again. Check that worker's host, then run the app again.")


def scheduler_silence() -> float:
    """How long a scheduler lightnb did not start may stay silent before the app counts it as lost
    (``$LIGHTNB_SCHEDULER_SILENCE`` seconds, default 10)."""
    import os

    try:
        return max(1.0, float(os.environ.get(SILENCE_ENV, SCHEDULER_SILENCE_SECONDS)))
    except ValueError:
        return SCHEDULER_SILENCE_SECONDS


def scheduler_lost(last_answer: float, now: float, silence: float) -> bool:
    """Whether a scheduler that last answered at ``last_answer`` is lost at ``now``."""
    return now - last_answer > silence


def _ping(client: Any, timeout: float) -> bool:
    """Whether the scheduler answers a ping within ``timeout`` s (asked from the client's event loop)."""
    import asyncio

    async def ping() -> None:
        await asyncio.wait_for(client.scheduler.echo(data=b""), timeout)

    try:
        future = asyncio.run_coroutine_threadsafe(ping(), client.loop.asyncio_loop)
        future.result(timeout + 1)
        return True
    except Exception:
        return False


def _describe_loss(work_name: str, error: BaseException) -> str:
    from distributed.scheduler import KilledWorker

    if isinstance(error, KilledWorker):
        worker = getattr(getattr(error, "last_worker", None), "address", None) or "its worker"
        return (f"the worker process running {work_name} died or its host stopped answering: lost the worker "
                f"{worker} (killed, crashed e.g. out of memory, or a link to its host was cut); the call is not "
                f"run again. Check that worker's host, then run the app again. Dask said: {error}")
    return f"{work_name} could not run on the cluster: {type(error).__name__}: {error}"


# -- on the worker ------------------------------------------------------------------------------------------
class _Subscriptions:
    """The apps whose push topic this worker process subscribed to, each with an event set once the
    scheduler confirmed the subscription (calls of one app may start on several threads at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._confirmed: dict[str, threading.Event] = {}

    def claim(self, app_id: str) -> tuple[threading.Event, bool]:
        """The app's confirmation event, and whether the caller is the first (the one to subscribe)."""
        with self._lock:
            confirmed = self._confirmed.get(app_id)
            if confirmed is not None:
                return confirmed, False
            confirmed = self._confirmed[app_id] = threading.Event()
            return confirmed, True

    def forget(self, app_id: str) -> None:
        with self._lock:
            self._confirmed.pop(app_id, None)


_SUBSCRIPTIONS = _Subscriptions()


def run_on_worker(app_id: str, work_name: str, call_id: str, payload: bytes, claim: bool,
                  route: Route | None = None) -> None:
    """The Dask task of one work call (runs on the worker)."""
    from distributed import get_worker, secede

    worker = get_worker()
    secede()  # a long-running work must not hold one of the worker's task slots
    transport = app_transport(worker, app_id, route)
    first = _claim(app_id, work_name, call_id, worker.address) if claim else None
    if first is not None:
        from ..core.calls import WorkStageStatus
        from .worker import WorkChannel

        channel = WorkChannel(work_name, call_id, transport)
        channel.status(WorkStageStatus.FAILED, (
            f"the worker process running {work_name} died or its host stopped answering: lost the worker "
            f"{first} (killed, crashed, or a link to its host was cut). Dask tried to run the call again on "
            f"{worker.address}, which lightnb refused: a call runs at most once. Check that worker's host, "
            "then run the app again."), "worker_died")
        channel.finish()
        return
    execute_call(app_id, work_name, call_id, payload, transport, ready=lambda: _subscribe(app_id, worker))


def app_transport(worker: Any, app_id: str, route: Route | None) -> Transport:
    """The transport of a call of ``app_id`` in this worker process. The app's calls here share one outbox
    (their batches leave together), flushed straight to the app's client when it gave a ``route`` and this
    process can reach it (see :mod:`lightnb.runtime.direct`), else sent through the scheduler."""
    topic = events_topic(app_id)
    through_scheduler = ordered_sender(worker, topic)

    def link() -> Link:
        if route is not None:
            sender = Sender(route, through_scheduler)
            if sender.direct:
                return Link(sender.send, sender.schedule, sender.settle, sender.close)
            sender.close()
        return Link(through_scheduler, worker.loop.add_callback)

    return transport_with_outbox((worker.address, topic), link, worker.address)


def ordered_sender(worker: Any, topic: str) -> Callable[[bytes], None]:
    """Send on ``topic`` in the order of the calls, from any thread. ``Worker.log_event`` sends at once on the
    worker's loop but defers from another thread (a call's final flush): a batch taken later on the loop
    would overtake one taken earlier on a call's thread, and the app would drop the overtaken one as already
    seen. Every send goes through the loop's callback queue instead, which is first in, first out."""

    def send(data: bytes) -> None:
        worker.loop.add_callback(worker.log_event, topic, data)

    return send


def _claim(app_id: str, work_name: str, call_id: str, address: str) -> str | None:
    """Claim a call for this worker; the address of the worker that claimed it first when this is a second
    execution (Dask re-runs tasks whose worker died), which is refused."""
    from distributed import get_client

    client = get_client()
    key = ["lightnb", app_id, work_name, call_id]
    first = client.get_metadata(key, default=None)
    if first is not None:
        return str(first)
    client.set_metadata(key, address)
    return None


def _subscribe(app_id: str, worker: Any) -> None:
    """Subscribe this worker process to the app's push topic (once), and make sure the scheduler has the
    subscription before the work reports that it runs: the flow pushes only after that report."""
    confirmed, first = _SUBSCRIPTIONS.claim(app_id)
    if not first:
        confirmed.wait(10)
        return
    from distributed import get_client

    client = get_client()
    probe = uuid.uuid4().hex
    topic = push_topic(app_id)

    def on_push(event: tuple[float, Any]) -> None:
        message = cloudpickle.loads(event[1])
        kind = message[0]
        if kind == "probe":
            if message[1] == probe:
                confirmed.set()
        elif kind == "set":
            _, work_name, call_id, body = message
            REGISTRY.deliver(app_id, work_name, call_id, body["seq"], body["values"])
        elif kind == "stop":
            REGISTRY.stop(app_id, message[1], message[2])

    client.subscribe_topic(topic, on_push)
    # The subscription travels on this process's client connection, the work's reports on the worker's:
    # publish a probe until it comes back, so no push can reach the scheduler before the subscription.
    for _ in range(200):
        client.log_event(topic, cloudpickle.dumps(("probe", probe)))
        if confirmed.wait(0.05):
            return


def apps_running_here() -> list[str]:
    """The apps with a call executing in this worker process."""
    return REGISTRY.running_apps()


def forget_app(app_id: str, topic: str, dask_worker: Any = None) -> None:
    """Drop what this worker process keeps for an app that ended (runs on each worker at app close, through
    ``Client.run``, which passes the worker as ``dask_worker``: ``get_worker()`` finds none there)."""
    others = REGISTRY.apps_here() - {app_id}
    REGISTRY.forget_app(app_id)
    _SUBSCRIPTIONS.forget(app_id)
    forget_outbox(events_topic(app_id))
    from . import preload

    if preload.EMBEDDED and not others:
        # A worker of the (warm) embedded cluster no other app uses now: what the app's works started ends.
        from .reaper import end_descendants

        end_descendants()
    try:
        client = dask_worker._client if dask_worker is not None else None
        if client is not None:
            client.unsubscribe_topic(topic)
    except Exception:
        pass
