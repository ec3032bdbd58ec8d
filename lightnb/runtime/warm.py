"""The warm cluster: one embedded ``LocalCluster`` kept for the process, shared by the apps started one after
another in it (a notebook kernel, a script), so only the first app pays for starting worker processes.

An app created without a cluster *acquires* it when it connects and *releases* it when it ends; its calls are
stopped and forgotten on the workers (see :meth:`lightnb.runtime.dask.DaskExecutor.close`) — the cluster
itself stays. It is closed when no app used it for ``LIGHTNB_WARM_CLUSTER`` seconds (default 300; ``0`` or
``off``: no warm cluster, each app gets an embedded cluster of its own, closed with it), at the interpreter's
exit, and at a kernel shutdown or restart (``lightnb.ui.lifecycle``).

>>> from lightnb.runtime import warm
>>> warm.describe()     # None, or {"address": ..., "workers": ..., "apps": [...], "idle_seconds": ...}
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from .cluster import CLIENT_CONFIG, Connection, start_local_cluster

DEFAULT_IDLE_SECONDS = 300.0
ENV = "LIGHTNB_WARM_CLUSTER"


class _Warm:
    """The sentinel ``LightningApp._make_executor`` passes as the cluster of an app that uses the warm one."""

    def __repr__(self) -> str:
        return "<the warm embedded cluster>"


WARM = _Warm()

_lock = threading.RLock()
_cluster: Any = None
_client: Any = None
_users: dict[str, str] = {}  # app id → description (the apps using it now)
_idle_since: float | None = None
_timer: threading.Timer | None = None
_disabled_here = False


def idle_seconds() -> float | None:
    """How long an unused warm cluster is kept; ``None`` when there is no warm cluster (per-app clusters)."""
    if _disabled_here:
        return None
    text = os.environ.get(ENV, "").strip().lower()
    if not text:
        return DEFAULT_IDLE_SECONDS
    if text in ("0", "off", "no", "false"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        return DEFAULT_IDLE_SECONDS
    return seconds if seconds > 0 else None


def enabled() -> bool:
    return idle_seconds() is not None


def disable() -> None:
    """No warm cluster in this process (``lightnb run``: one app per process, its cluster closes with it)."""
    global _disabled_here
    _disabled_here = True


def acquire(app_id: str) -> Connection:
    """A connection to the warm cluster for ``app_id`` (started now if there is none, or it died). Closing
    the connection releases it; the cluster stays."""
    global _cluster, _client, _idle_since
    import dask
    from distributed import Client

    with _lock:
        _cancel_timer()
        if _client is not None and not _alive():
            _close_now()
        if _cluster is None:
            _cluster = start_local_cluster()
            with dask.config.set(CLIENT_CONFIG):
                _client = Client(_cluster, set_as_default=False)
        _users[app_id] = app_id
        _idle_since = None
        address = _cluster.scheduler_address
        workers = len(_cluster.workers)
    return Connection(_client, _cluster, description=f"the warm embedded LocalCluster at {address} "
                                                     f"({workers} worker processes, kept for this process)",
                      embedded=True, release=lambda: release(app_id))


def release(app_id: str) -> None:
    """``app_id`` no longer uses the warm cluster; the last one out starts the idle countdown."""
    global _idle_since, _timer
    with _lock:
        if _users.pop(app_id, None) is None or _users or _cluster is None:
            return
        _idle_since = time.monotonic()
        seconds = idle_seconds() or 0.0
        _timer = threading.Timer(seconds, _close_if_idle)
        _timer.daemon = True
        _timer.name = "lightnb-warm-cluster-idle"
        _timer.start()


def describe() -> dict[str, Any] | None:
    """The warm cluster as ``%lightnb cluster`` shows it, or ``None`` when there is none."""
    with _lock:
        if _cluster is None:
            return None
        return {
            "address": _cluster.scheduler_address,
            "workers": len(_cluster.workers),
            "apps": list(_users),
            "idle_seconds": None if _idle_since is None else time.monotonic() - _idle_since,
            "closes_after_idle": idle_seconds(),
        }


def worker_pids() -> list[int]:
    """The process ids of the warm cluster's workers (to end them and their descendants at a kernel
    shutdown)."""
    with _lock:
        cluster = _cluster
    return [] if cluster is None else worker_pids_of(cluster)


def worker_pids_of(cluster: Any) -> list[int]:
    """The process ids of a LocalCluster's worker processes."""
    pids = []
    for worker in list(getattr(cluster, "workers", {}).values()):
        process = getattr(getattr(worker, "process", None), "process", None)  # Nanny → AsyncProcess → Process
        pid = getattr(process, "pid", None)
        if isinstance(pid, int):
            pids.append(pid)
    return pids


def end_worker(address: str) -> bool:
    """End the warm cluster's worker process at ``address`` and every process under it, at once (its nanny
    starts a fresh one). For a work that ignored its app's stop: nothing of an app outlives it."""
    import psutil

    with _lock:
        cluster = _cluster
    if cluster is None:
        return False
    for nanny in list(getattr(cluster, "workers", {}).values()):
        if getattr(nanny, "worker_address", None) != address:
            continue
        pid = getattr(getattr(getattr(nanny, "process", None), "process", None), "pid", None)
        if not isinstance(pid, int):
            return False
        try:
            process = psutil.Process(pid)
            processes = [*process.children(recursive=True), process]
        except psutil.Error:
            return False
        for each in processes:
            try:
                each.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(processes, timeout=5)
        return True
    return False


def shutdown(timeout: float = 10) -> None:
    """Close the warm cluster now, whoever uses it (the interpreter's exit, a kernel shutdown)."""
    with _lock:
        _cancel_timer()
        _users.clear()
        _close_now(timeout)


def _close_if_idle() -> None:
    with _lock:
        if _users or _idle_since is None:
            return
        _close_now()


def _close_now(timeout: float = 10) -> None:
    global _cluster, _client, _idle_since
    cluster, client = _cluster, _client
    # What works started under the workers and left behind (an app nobody stopped) ends with them.
    leftovers = _descendants(worker_pids())
    _cluster = _client = _idle_since = None
    if client is not None:
        try:
            client.close(timeout=5)
        except Exception:
            pass
    if cluster is not None:
        try:
            cluster.close(timeout=timeout)
        except Exception:
            pass
    _end(leftovers)


def _descendants(pids: list[int]) -> list[Any]:
    import psutil

    found: list[Any] = []
    for pid in pids:
        try:
            found += psutil.Process(pid).children(recursive=True)
        except psutil.Error:
            pass
    return found


def _end(processes: list[Any]) -> None:
    import psutil

    alive = []
    for process in processes:
        try:
            if process.is_running():
                process.terminate()
                alive.append(process)
        except psutil.Error:
            pass
    _, still = psutil.wait_procs(alive, timeout=2)
    for process in still:
        try:
            process.kill()
        except psutil.Error:
            pass


def _alive() -> bool:
    return _client is not None and _client.status == "running" and getattr(_cluster, "status", None) is not None \
        and _cluster.status.name == "running"


def _cancel_timer() -> None:
    global _timer
    if _timer is not None:
        _timer.cancel()
        _timer = None


__all__ = ["DEFAULT_IDLE_SECONDS", "ENV", "WARM", "acquire", "describe", "disable",
           "enabled", "end_worker", "idle_seconds", "release", "shutdown", "worker_pids"]
