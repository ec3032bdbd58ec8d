"""Per-component log buffers: the last lines a flow or work printed."""

from __future__ import annotations

import threading
from collections import deque


class LogBuffer:
    """The last ``max_lines`` lines of a component's output, stdout and stderr interleaved line by line: an
    unfinished line of one stream is not broken by a line of the other (an unbuffered ``print`` writes its
    pieces one by one)."""

    def __init__(self, max_lines: int = 2000) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._partials: dict[str, str] = {}  # each stream's unfinished last line
        self._lock = threading.Lock()
        self.version = 0
        self.count = 0  # complete lines appended so far: `since(count)` gives the ones after

    @property
    def _partial(self) -> str:
        return "".join(self._partials.values())

    def append(self, text: str, stream: str = "stdout") -> None:
        with self._lock:
            pieces = (self._partials.pop(stream, "") + text).split("\n")
            last = pieces.pop()
            if last:
                self._partials[stream] = last
            self._lines.extend(pieces)
            self.count += len(pieces)
            self.version += 1

    def lines(self, n: int | None = None) -> list[str]:
        with self._lock:
            lines = list(self._lines)
            if self._partial:
                lines.append(self._partial)
        return lines if n is None else lines[-n:] if n > 0 else []

    def since(self, count: int, partial: bool = False) -> tuple[list[str], int]:
        """The complete lines appended after the first ``count`` (those still kept) and the new count, for
        following a log as it grows; with ``partial``, also the unfinished last line."""
        with self._lock:
            new = min(self.count - count, len(self._lines))
            lines = list(self._lines)[-new:] if new > 0 else []
            if partial and self._partial:
                lines.append(self._partial)
            return lines, self.count

    def text(self, n: int | None = None) -> str:
        return "\n".join(self.lines(n))
