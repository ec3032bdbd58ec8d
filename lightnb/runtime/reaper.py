"""Nothing a work started outlives the embedded cluster's worker process that ran it, nor the worker process
its client — however the client ends (``app.stop()``, Ctrl-C, SIGTERM, SIGKILL, a kernel killed).

On each worker process of the embedded cluster (installed by its preload, :mod:`lightnb.runtime.preload`):

- **Linux**: the worker is a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): a process a work started whose
  parent exits (``sh -c 'server &'``, a daemonizing tool) is re-parented to the worker instead of init, so it
  stays among the worker's descendants; and the worker gets SIGTERM when its parent, the client, dies
  (``PR_SET_PDEATHSIG``), even by SIGKILL.
- **Everywhere**: Dask's worker process leaves with ``os._exit`` the moment its parent's pipe closes (the
  client died): that exit first ends the worker's descendants here. On systems without a subreaper (macOS)
  an orphan whose own parent exited earlier escapes; on Windows the processes are not looked for.

The worker's end — SIGTERM (the client dying, the nanny, a kernel shutdown), ``os._exit``, a normal close,
and an app ending on the warm cluster with no other app's call running there — ends every descendant:
frozen, then SIGTERM, then SIGKILL after a grace period. Clusters lightnb did not create are left alone:
their workers are not lightnb's (durable apps rely on works outliving their kernel there).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any

# How long descendants have between SIGTERM and SIGKILL (when the client is gone: half of it).
GRACE_SECONDS = 1.0

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Guard:
    """What :func:`guard` could set up in this process."""

    subreaper: bool  # orphans of the worker's descendants are re-parented to it
    parent_death: bool  # the client's death is signalled (Linux); elsewhere Dask's own pipe watch
    parent_pid: int


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def guard(parent_pid: int) -> Guard:
    """Make this process a subreaper that ends its descendants, then itself, when ``parent_pid`` (its parent,
    the client) dies or it exits. Call once, on the main thread (it installs a SIGTERM handler)."""
    global _guarded_pid
    _guarded_pid = os.getpid()
    subreaper = _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    if os.name == "posix":
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _on_sigterm)
        if os._exit is not _exit_ending_descendants:
            os._exit = _exit_ending_descendants
    signalled = _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if signalled and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)  # it died before the signal was asked for
    return Guard(subreaper, signalled, parent_pid)


_guarded_pid: int | None = None
_os_exit = os._exit


def _exit_ending_descendants(code: int) -> None:  # type: ignore[misc]
    """``os._exit`` in a guarded worker: its descendants first (not in processes forked from it)."""
    if os.getpid() == _guarded_pid:
        with contextlib.suppress(BaseException):
            end_descendants(grace=GRACE_SECONDS / 2)
    _os_exit(code)


def _on_sigterm(signum: int, frame: Any) -> None:
    end_descendants(grace=GRACE_SECONDS / 2)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def end_descendants(grace: float = GRACE_SECONDS) -> int:
    """End every process under this one (adopted orphans included): frozen together so that none acts on
    another's end (a shell running its next command), SIGTERM, SIGKILL after ``grace`` for what is left;
    reaped. Returns how many there were."""
    import psutil

    me = psutil.Process()
    ended = 0
    processes: list[Any] = []
    for _ in range(5):  # a process forking while its tree is collected: look again
        processes = []
        with contextlib.suppress(psutil.Error):
            processes = me.children(recursive=True)
        if not processes:
            break
        ended += len(processes)
        _signal(processes, signal.SIGSTOP)
        _signal(processes, signal.SIGTERM)
        _signal(processes, signal.SIGCONT)
        _, alive = psutil.wait_procs(processes, timeout=grace)
        _signal(alive, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=2)
    reap_adopted()
    return ended


def reap_adopted() -> None:
    """Collect exited children nobody waits for (orphans adopted as a subreaper leave zombies)."""
    if os.name != "posix":
        return
    import psutil

    with contextlib.suppress(psutil.Error):
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error, ChildProcessError, OSError):
                if child.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(child.pid, os.WNOHANG)


def _signal(processes: list[Any], sig: int) -> None:
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


__all__ = ["GRACE_SECONDS", "Guard", "end_descendants", "guard", "reap_adopted"]
