"""Helpers of the component tests: waiting on app state, the processes of the cluster's workers, small flows.

(A module with a name of its own: test folders are not packages, so helper modules are imported by name.)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import psutil

from lightnb import LightningFlow


def wait_for(predicate: Callable[[], Any], timeout: float = 120.0, what: str = "the condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def live_descendants(pids: list[int]) -> set[int]:
    """Processes started by these processes that are still running (zombies count as ended)."""
    found = set()
    for pid in pids:
        try:
            children = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    found.add(child.pid)
            except psutil.NoSuchProcess:
                pass
    return found


def describe(pids: set[int]) -> str:
    described = []
    for pid in sorted(pids):
        try:
            described.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())[:120]}")
        except psutil.Error:
            described.append(str(pid))
    return "; ".join(described)


class WorkerProcesses:
    """The pids of the cluster's worker processes, and what they had started before the test."""

    def __init__(self, client: Any) -> None:
        self.pids = list(client.run(os.getpid).values())
        self.before = live_descendants(self.pids)

    def started(self) -> set[int]:
        return live_descendants(self.pids) - self.before

    def assert_none_left(self, timeout: float = 15.0) -> None:
        """Every process the workers started since the test began has ended (within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while self.started() and time.monotonic() < deadline:
            time.sleep(0.1)
        left = self.started()
        assert not left, f"processes left behind on the workers: {describe(left)}"


class RunWork(LightningFlow):
    """Runs one work (``flow.work``) on every pass: a server until the app stops, a job once."""

    def __init__(self, work):
        super().__init__()
        self.work = work

    def run(self):
        self.work.run()


def gradio_predict(url: str, *inputs, headers=None) -> object:
    """Call a Gradio app's ``predict`` endpoint through its HTTP API, as `curl` would."""
    with httpx.Client(base_url=url, timeout=30, headers=headers) as http:
        event = http.post("gradio_api/call/predict", json={"data": list(inputs)})
        event.raise_for_status()
        stream = http.get(f"gradio_api/call/predict/{event.json()['event_id']}")
    lines = stream.text.splitlines()
    assert "event: complete" in lines, stream.text
    return json.loads(lines[lines.index("event: complete") + 1].removeprefix("data: "))[0]
