"""The app a piece of code runs for: its id, storage root and environment, wherever that code runs.

The loop thread of an app and every thread executing one of its works on a worker see the app's
:class:`AppContext` through :func:`current`; storage (drives, paths) uses it to find the app's storage root.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AppContext:
    app_id: str
    storage: str | None = None
    env: dict[str, str] = field(default_factory=dict)


_local = threading.local()

# The storage root when an app is given none: $LIGHTNB_STORAGE, else this folder under the current directory.
STORAGE_ENV = "LIGHTNB_STORAGE"
DEFAULT_STORAGE_FOLDER = ".lightnb-storage"


def resolve_storage(url: str | os.PathLike[str] | None) -> str:
    """The storage root URL an app uses: ``url``, else ``$LIGHTNB_STORAGE``, else ``./.lightnb-storage``.
    A local folder is made absolute here, so the app's works find the same folder whatever their cwd."""
    text = os.fspath(url) if url else os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE_FOLDER
    if "://" in text:
        return text
    return os.path.abspath(os.path.expanduser(text))


def current() -> AppContext | None:
    """The context of the app this thread works for (``None`` outside any app)."""
    return getattr(_local, "context", None)


@contextlib.contextmanager
def activated(context: AppContext) -> Iterator[AppContext]:
    """Make ``context`` current on this thread (and its environment variables set) for the block."""
    previous = current()
    _local.context = context
    os.environ.update(context.env)
    try:
        yield context
    finally:
        _local.context = previous


def set_current(context: AppContext | None) -> None:
    _local.context = context
