"""Helpers for the component tests: waiting on app state, and the processes of the cluster's workers."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from lightnb import LightningApp, LightningFlow
from lightnb.components import TrainerWork


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


@pytest.fixture(scope="module")
def client(cluster):
    from distributed import Client

    with Client(cluster, set_as_default=False) as connected:
        yield connected


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


@pytest.fixture
def worker_processes(client) -> WorkerProcesses:
    return WorkerProcesses(client)


class TrainTwice(LightningFlow):
    """Root flow of the ``checkpoints`` fixture: trains on two different lines, one after the other."""

    def __init__(self, root_dir: str):
        super().__init__()
        from .models import NoisyLine, Regressor

        self.trainer = TrainerWork(Regressor, NoisyLine, module_params={"hidden": 8, "lr": 0.05},
                                   max_epochs=8, monitor="val_loss", root_dir=root_dir, seed=0)
        self.best = []

    def run(self):
        self.trainer.run(data_params={"slope": 2.0})
        if not self.best and self.trainer.has_succeeded:
            self.best = [str(self.trainer.best_checkpoint)]
        self.trainer.run(data_params={"slope": -2.0})
        if len(self.best) == 1 and self.trainer.has_succeeded:
            self.best = [*self.best, str(self.trainer.best_checkpoint)]
            self.stop("trained twice")


@pytest.fixture(scope="module")
def checkpoints(cluster, tmp_path_factory) -> dict[str, str]:
    """Two Lightning checkpoints trained by ``TrainerWork`` on the cluster: ``up`` (y ≈ 2x + 1) and ``down``
    (y ≈ -2x + 1), and the runs folder they were logged to."""
    root_dir = str(tmp_path_factory.mktemp("runs"))
    flow = TrainTwice(root_dir)
    app = LightningApp(flow, cluster=cluster)
    app.start()
    app.wait(300)
    up, down = flow.best
    return {"up": up, "down": down, "root_dir": root_dir}
