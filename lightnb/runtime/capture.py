"""Per-component output: what a flow or a work prints from its own thread goes to that component's log.

``sys.stdout`` / ``sys.stderr`` are replaced (once per process) by routers that look up the writing thread:
a thread running a component sends its text to that component's sink, every other thread writes to the
original stream as before. So a work's ``print`` lands in its log (and the app view), not in whichever
notebook cell happens to be running.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

Sink = Callable[[str, str], None]  # (stream name, text)



class _Routes:
    """Which thread's output goes to which sink: written by the threads running components, read by every
    thread that prints. One lock guards the table and the installation of the routers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sinks: dict[int, Sink] = {}

    def sink(self, ident: int) -> Sink | None:
        with self._lock:
            return self._sinks.get(ident)

    def replace(self, ident: int, sink: Sink | None) -> Sink | None:
        """Route thread ``ident`` to ``sink`` (``None``: to the original stream); returns its previous sink."""
        with self._lock:
            previous = self._sinks.get(ident)
            if sink is None:
                self._sinks.pop(ident, None)
            else:
                self._sinks[ident] = sink
            return previous

    def install(self) -> None:
        with self._lock:
            if not isinstance(sys.stdout, _Router):
                sys.stdout = _Router(sys.stdout, "stdout")
            if not isinstance(sys.stderr, _Router):
                sys.stderr = _Router(sys.stderr, "stderr")




class _Router(io.TextIOBase):
    def __init__(self, original: TextIO, stream: str) -> None:
        self._original = original
        self._stream = stream

    def write(self, text: str) -> int:
        sink = _ROUTES.sink(threading.get_ident())
        if sink is None:
            return self._original.write(text)
        if text:
            sink(self._stream, text)
        return len(text)

    def flush(self) -> None:
        if _ROUTES.sink(threading.get_ident()) is None:
            self._original.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._original.isatty()

    def fileno(self) -> int:
        return self._original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


_ROUTES = _Routes()


def install() -> None:
    """Put the routers in place (again, if something replaced ``sys.stdout`` since)."""
    _ROUTES.install()


@contextlib.contextmanager
def route(sink: Sink) -> Iterator[None]:
    """Send what the current thread prints to ``sink`` while the block runs."""
    install()
    ident = threading.get_ident()
    previous = _ROUTES.replace(ident, sink)
    try:
        yield
    finally:
        _ROUTES.replace(ident, previous)
