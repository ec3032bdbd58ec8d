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

_routes: dict[int, Sink] = {}
_install_lock = threading.Lock()


class _Router(io.TextIOBase):
    def __init__(self, original: TextIO, stream: str) -> None:
        self._original = original
        self._stream = stream

    def write(self, text: str) -> int:
        sink = _routes.get(threading.get_ident())
        if sink is None:
            return self._original.write(text)
        if text:
            sink(self._stream, text)
        return len(text)

    def flush(self) -> None:
        if threading.get_ident() not in _routes:
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


def install() -> None:
    """Put the routers in place (again, if something replaced ``sys.stdout`` since)."""
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout, "stdout")
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr, "stderr")


@contextlib.contextmanager
def route(sink: Sink) -> Iterator[None]:
    """Send what the current thread prints to ``sink`` while the block runs."""
    install()
    ident = threading.get_ident()
    previous = _routes.get(ident)
    _routes[ident] = sink
    try:
        yield
    finally:
        if previous is None:
            _routes.pop(ident, None)
        else:
            _routes[ident] = previous
