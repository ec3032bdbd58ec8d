"""The UI pump: the one thread that writes lightnb's widgets and comm messages.

Widgets are not thread-safe (ipywidgets keeps no lock around trait syncing), so after a view is built
every write to it happens here. App loops, widget and comm handlers only *mark* a view dirty or *enqueue*
a task — from any thread, never blocking. The pump flushes each dirty view at most ``rate`` times a second
(changes in between are coalesced), so a view costs the kernel little however fast its app changes. It has
its own thread, so views keep updating while a notebook cell blocks (IOPub sends from any thread).

>>> pump().mark(view)          # view.flush() runs on the pump thread within 1 / rate seconds
>>> pump().call(task)          # task() runs on the pump thread, in order
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Protocol

DEFAULT_RATE = 10.0  # flushes per second per view, at most


class View(Protocol):
    """What the pump drives: ``flush()`` sends what changed since the last flush."""

    def flush(self) -> None: ...


class Pump:
    """Flushes dirty views, each at most ``rate`` times a second, and runs queued tasks, on one thread."""

    def __init__(self, rate: float = DEFAULT_RATE) -> None:
        self.interval = 1.0 / rate
        self._cond = threading.Condition()
        self._dirty: dict[View, None] = {}
        self._last: dict[View, float] = {}
        self._tasks: deque[Callable[[], None]] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- any thread ---------------------------------------------------------------------------------------
    def mark(self, view: View) -> None:
        """``view`` has something to send: flush it soon."""
        with self._cond:
            if view not in self._dirty:
                self._dirty[view] = None
                self._cond.notify()
            self._ensure_thread()

    def call(self, task: Callable[[], None]) -> None:
        """Run ``task()`` on the pump thread (after the tasks queued before it)."""
        with self._cond:
            self._tasks.append(task)
            self._cond.notify()
            self._ensure_thread()

    def forget(self, view: View) -> None:
        with self._cond:
            self._dirty.pop(view, None)
            self._last.pop(view, None)

    def run_sync(self, task: Callable[[], None], timeout: float = 10.0) -> None:
        """Run ``task()`` on the pump thread and wait for it (from another thread; inline on the pump)."""
        if self.on_pump_thread:
            task()
            return
        done = threading.Event()
        failure: list[BaseException] = []

        def wrapped() -> None:
            try:
                task()
            except BaseException as error:
                failure.append(error)
            finally:
                done.set()

        self.call(wrapped)
        if not done.wait(timeout):
            raise TimeoutError(f"lightnb's UI thread did not run the task within {timeout} s")
        if failure:
            raise failure[0]

    @property
    def on_pump_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()

    # -- the pump thread ----------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._main, name="lightnb-ui-pump", daemon=True)
            self._thread.start()

    def _main(self) -> None:
        while True:
            with self._cond:
                tasks, due, wait = self._collect()
                while not tasks and not due and not self._stopping:
                    self._cond.wait(wait)
                    tasks, due, wait = self._collect()
                if self._stopping:
                    return
            for task in tasks:
                _guarded(task)
            for view in due:
                _guarded(view.flush)

    def _collect(self) -> tuple[list[Callable[[], None]], list[View], float | None]:
        """(tasks to run, views due for a flush, seconds until the next view is due); under the lock."""
        tasks = list(self._tasks)
        self._tasks.clear()
        now = time.monotonic()
        due: list[View] = []
        wait: float | None = None
        for view in list(self._dirty):
            ready_at = self._last.get(view, 0.0) + self.interval
            if ready_at <= now:
                due.append(view)
                del self._dirty[view]
                self._last[view] = now
            else:
                wait = ready_at - now if wait is None else min(wait, ready_at - now)
        return tasks, due, wait


def _guarded(function: Callable[[], None]) -> None:
    try:
        function()
    except Exception:
        # A broken view must not stop the others. The traceback goes to the kernel's own stderr (the server's
        # log): sys.stderr would put it in whichever cell ran last.
        traceback.print_exc(file=sys.__stderr__)


_pump: Pump | None = None
_pump_lock = threading.Lock()


def pump() -> Pump:
    """The kernel's UI pump (created on first use)."""
    global _pump
    with _pump_lock:
        if _pump is None:
            _pump = Pump()
        return _pump
