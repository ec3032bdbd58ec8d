"""Kernel shutdown and restart stop the kernel's apps, their works, the clusters they created and the warm
cluster they shared.

Python's ``atexit`` (where the core stops running apps) is not enough in a kernel: on a shutdown request
the Jupyter server gives the kernel a few seconds (``shutdown_wait_time``, 5 s by default: half of it, then
SIGTERM, then SIGKILL) and a stopping app may take longer. So ``%load_ext lightnb`` hooks the kernel's
``do_shutdown`` (which runs first, on the control thread, even while a cell is busy) and SIGTERM: all apps
are asked to stop at once, given a short while, and whatever is left of the processes their clusters
started — worker processes and what their works spawned, even in a session of its own — is terminated.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any

from ..app import LightningApp, running_apps
from ..runtime.warm import worker_pids_of
from ..session import stop_apps

STOP_SECONDS = 2.0  # the apps' share of the server's shutdown wait; then leftover processes are ended

_installed: dict[str, Any] = {}


def install(kernel: Any) -> None:
    """Hook ``kernel``'s shutdown (and SIGTERM when called on the main thread); idempotent."""
    if kernel is None or "do_shutdown" in _installed:
        return
    original = kernel.do_shutdown

    def do_shutdown(restart: bool) -> Any:
        stop_everything()
        return original(restart)

    kernel.do_shutdown = do_shutdown
    _installed["do_shutdown"] = (kernel, original)
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm)
            _installed["sigterm"] = previous


def uninstall() -> None:
    hooked = _installed.pop("do_shutdown", None)
    if hooked is not None:
        kernel, original = hooked
        kernel.do_shutdown = original
    if "sigterm" in _installed and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _installed.pop("sigterm"))


def _on_sigterm(signum: int, frame: Any) -> None:
    stop_everything()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def stop_everything(seconds: float = STOP_SECONDS) -> None:
    """Stop every running app at once, wait up to ``seconds``, then end what is left of the processes
    under the clusters the apps created."""
    from ..runtime import warm

    apps = running_apps()
    leftovers = _owned_processes(apps) + _descendants(warm.worker_pids())
    if apps:
        stop_apps(apps, timeout=seconds)
        leftovers += _owned_processes(apps)  # started since the first look
    leftovers += _descendants(warm.worker_pids())
    _end_processes(leftovers)
    warm.shutdown(timeout=2)  # the warm cluster the kernel's apps shared (its workers are ended by now)


def _owned_processes(apps: list[LightningApp]) -> list[Any]:
    """The worker processes of the clusters these apps created, and all their descendants."""

    found: list[Any] = []
    for app in apps:
        connection = getattr(getattr(app.loop, "executor", None), "connection", None)
        if connection is None or not connection.owns_cluster:
            continue
        found += _descendants(worker_pids_of(connection.cluster))
    return found


def _descendants(pids: list[int]) -> list[Any]:
    """The processes ``pids`` and all their descendants."""
    import psutil

    found: list[Any] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            found += [process, *process.children(recursive=True)]
    return found


def _end_processes(processes: list[Any], grace: float = 1.0) -> None:
    import psutil

    alive = []
    for process in {p.pid: p for p in processes}.values():
        with contextlib.suppress(psutil.Error):
            if process.is_running():
                process.terminate()
                alive.append(process)
    _, still = psutil.wait_procs(alive, timeout=grace)
    for process in still:
        with contextlib.suppress(psutil.Error):
            process.kill()
