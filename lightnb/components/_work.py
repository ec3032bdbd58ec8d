"""What the ready-made works share about their own run: hearing a stop, and reporting after one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..core.work import LightningWork, WorkStopped
from ..runtime.worker import on_stop_requested


def stop_signal(work: LightningWork, *callbacks: Callable[[], None]) -> tuple[threading.Event, Callable[[], None]]:
    """An event set (and ``callbacks`` run, from another thread) when the app asks ``work`` to stop.

    Returns the event and a function that unregisters the callbacks. Raises :class:`WorkStopped` at once if
    the stop came before this call, so a work never starts what it would have to end straight away.
    """
    event = threading.Event()

    def on_stop() -> None:
        event.set()
        for callback in callbacks:
            callback()

    unregister = on_stop_requested(work, on_stop)
    try:
        work.check_stop()
    except WorkStopped:
        unregister()
        raise
    return event, unregister


def set_quietly(work: LightningWork, **values: Any) -> None:
    """Set state attributes even after a stop was requested.

    A set on a work asked to stop raises :class:`WorkStopped` once the value is on its way to the flow;
    a work that is winding down (saving its last checkpoint, clearing its ``url``) still wants every one of
    its final values to arrive, and ends on its own right after.
    """
    for attribute, value in values.items():
        try:
            setattr(work, attribute, value)
        except WorkStopped:
            pass
