"""Per-component log buffers: the last lines a flow or work printed."""

from __future__ import annotations

import threading
from collections import deque


class LogBuffer:
    """The last ``max_lines`` lines of a component's output (stdout and stderr interleaved)."""

    def __init__(self, max_lines: int = 2000) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._partial = ""
        self._lock = threading.Lock()
        self.version = 0

    def append(self, text: str) -> None:
        with self._lock:
            pieces = (self._partial + text).split("\n")
            self._partial = pieces.pop()
            self._lines.extend(pieces)
            self.version += 1

    def lines(self, n: int | None = None) -> list[str]:
        with self._lock:
            lines = list(self._lines)
            if self._partial:
                lines.append(self._partial)
        return lines if n is None else lines[-n:] if n > 0 else []

    def text(self, n: int | None = None) -> str:
        return "\n".join(self.lines(n))
