"""An executor that runs work calls on threads of this process: fast unit tests, no cluster.

Calls still travel as pickles (a work is a copy, as on a real worker) and report through the same
:class:`~lightnb.runtime.worker.WorkChannel` as on Dask; only the transport differs.
"""

from __future__ import annotations

import threading
from typing import Any

from .protocol import CallSpec, Emit, Executor
from .worker import REGISTRY, Transport, execute_call, loads_batch


class InProcessExecutor(Executor):
    """Runs each call on a thread of its own in this process."""

    description = "in-process threads (no cluster)"

    def __init__(self) -> None:
        self._emit: Emit | None = None
        self._threads: dict[str, threading.Thread] = {}
        self._app_id: str | None = None

    def start(self, emit: Emit) -> None:
        self._emit = emit

    def _send(self, data: bytes) -> None:
        assert self._emit is not None
        self._emit(loads_batch(data))

    def submit(self, spec: CallSpec) -> None:
        self._app_id = spec.app_id
        transport = Transport(send=self._send, schedule=lambda flush: flush(), worker="in-process")
        thread = threading.Thread(
            target=execute_call, args=(spec.app_id, spec.work_name, spec.call_id, spec.payload, transport),
            name=f"lightnb-work-{spec.work_name}", daemon=True,
        )
        self._threads[f"{spec.work_name}:{spec.call_id}"] = thread
        thread.start()

    def push(self, work_name: str, call_id: str, message: dict[str, Any]) -> None:
        if self._app_id is not None:
            REGISTRY.deliver(self._app_id, work_name, call_id, message["seq"], message["values"])

    def stop(self, work_name: str, call_id: str, started: bool) -> None:
        if self._app_id is not None:
            REGISTRY.stop(self._app_id, work_name, call_id)

    def close(self) -> None:
        for thread in list(self._threads.values()):
            thread.join(timeout=1.0)
        if self._app_id is not None:
            REGISTRY.forget_app(self._app_id)
