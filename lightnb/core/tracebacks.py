"""Tracebacks of user code, with their source lines even when the code exists only in the notebook.

A work defined in a notebook cell runs on a worker process, but its code's file name
(``/tmp/ipykernel_41/2301456873.py``) is known only to the kernel, which keeps the cell's text in
:mod:`linecache`. A traceback formatted on the worker would list the frames without a line of code. So the
worker sends a :class:`RemoteTraceback` — the frames, with the lines it could read itself — and the app's side
renders it, reading the lines the worker could not from its own ``linecache``.

>>> try:
...     1 / 0
... except ZeroDivisionError as error:
...     print(RemoteTraceback.capture(error).render().splitlines()[-1])
ZeroDivisionError: division by zero
"""

from __future__ import annotations

import linecache
import traceback
from dataclasses import dataclass
from pathlib import Path

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)

# How Python joins the parts of a chain of exceptions (traceback's own strings, which are private there).
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"

# (file name, line number, function name, source line or None where this process could not read it)
Frame = tuple[str, int | None, str, str | None]


@dataclass(frozen=True)
class ChainLink:
    """One exception of a chain: its frames, its ``Type: message`` lines and how it joins the next one."""

    frames: tuple[Frame, ...]
    exception_lines: tuple[str, ...]
    joiner: str = ""  # the text printed after it: _CAUSE, _CONTEXT or nothing for the last one


@dataclass(frozen=True)
class RemoteTraceback:
    """A traceback that can travel between processes and be formatted where the source is."""

    links: tuple[ChainLink, ...]
    # Exception groups nest tracebacks in a way this does not model: they travel formatted, as they are.
    formatted: str | None = None

    @classmethod
    def capture(cls, error: BaseException) -> RemoteTraceback:
        """The traceback of ``error``, without lightnb's own frames at its top."""
        top = _user_traceback(error)
        chain: list[tuple[traceback.TracebackException, str]] = []
        current: traceback.TracebackException | None = top
        joiner = ""
        while current is not None:
            if getattr(current, "exceptions", None) is not None:  # an exception group (Python 3.11+)
                return cls((), "".join(top.format()))
            chain.append((current, joiner))
            if current.__cause__ is not None:
                current, joiner = current.__cause__, _CAUSE
            elif current.__context__ is not None and not current.__suppress_context__:
                current, joiner = current.__context__, _CONTEXT
            else:
                current = None
        # Python prints the chain from the first exception raised to the last.
        links = [ChainLink(tuple(_frame(f) for f in exception.stack), tuple(exception.format_exception_only()),
                           joiner) for exception, joiner in reversed(chain)]
        return cls(tuple(links))

    def render(self) -> str:
        """The traceback as Python prints it, source lines filled in from this process's ``linecache``."""
        if self.formatted is not None:
            return self.formatted
        parts: list[str] = []
        for link in self.links:
            if link.frames:
                parts.append("Traceback (most recent call last):\n")
                parts.extend(traceback.StackSummary.from_list(list(link.frames)).format())
            parts.extend(link.exception_lines)
            parts.append(link.joiner)
        return "".join(parts)

    def __str__(self) -> str:
        return self.render()


def _user_traceback(error: BaseException) -> traceback.TracebackException:
    """The ``TracebackException`` of ``error``, lines not read yet, without lightnb's own frames around the
    user's: above the first (the loop, the worker) and below the last (the checks of lightnb's state rules
    that raised on the user's line, which is then the last one shown)."""
    tb = error.__traceback__
    while tb is not None and _ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    summary = traceback.TracebackException(type(error), error, tb, lookup_lines=False)
    frames = list(summary.stack)
    last = max((i for i, frame in enumerate(frames) if not _ours(frame.filename)), default=None)
    if last is not None and last < len(frames) - 1:
        summary.stack = traceback.StackSummary.from_list(frames[:last + 1])
    return summary


def _ours(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIR)


def format_user_traceback(error: BaseException) -> str:
    """The traceback of an error in user code, without lightnb's own frames at its top, formatted here."""
    return "".join(_user_traceback(error).format())


def _frame(frame: traceback.FrameSummary) -> Frame:
    # Only the lines this process can read travel; ``None`` asks the process that renders it.
    line = linecache.getline(frame.filename, frame.lineno) if frame.lineno is not None else ""
    return frame.filename, frame.lineno, frame.name, line.strip() or None
