"""Worker preload of the embedded cluster: worker processes ignore Ctrl-C.

A Ctrl-C in a terminal reaches every process of its group. The app catches it and stops its works in order;
worker processes killed by the same signal would take running works down before they could stop cleanly.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def dask_setup(worker: Any) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
