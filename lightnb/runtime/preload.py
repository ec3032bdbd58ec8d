"""Worker preload of the embedded cluster: worker processes ignore Ctrl-C, and nothing a work started
outlives its worker process, nor the worker process its client (see :mod:`lightnb.runtime.reaper`).

A Ctrl-C in a terminal reaches every process of its group. The app catches it and stops its works in order;
worker processes killed by the same signal would take running works down before they could stop cleanly.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from . import reaper

# Set in a worker process of a cluster lightnb set up: its descendants are lightnb's to end.
EMBEDDED = False


def dask_setup(worker: Any) -> None:
    global EMBEDDED
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if getattr(worker, "nanny", None):  # a worker process of its own, child of the client (not processes=False)
        EMBEDDED = True
        reaper.guard(os.getppid())


def dask_teardown(worker: Any) -> None:
    """The worker closes: what its works started ends with it."""
    if EMBEDDED:
        reaper.end_descendants()
