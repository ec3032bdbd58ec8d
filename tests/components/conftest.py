"""Fixtures of the component tests: a client of the module's cluster, the workers' processes, and two
checkpoints trained by TrainerWork."""

from __future__ import annotations

import pytest
from components_support import WorkerProcesses

from lightnb import LightningApp, LightningFlow
from lightnb.components import TrainerWork


@pytest.fixture(autouse=True)
def app_storage(tmp_path, monkeypatch):
    """Apps of these tests keep their files (Paths, drives) in a folder of the test's own."""
    monkeypatch.setenv("LIGHTNB_STORAGE", str(tmp_path / "storage"))


@pytest.fixture(scope="module")
def client(cluster):
    from distributed import Client

    with Client(cluster, set_as_default=False) as connected:
        yield connected


@pytest.fixture
def worker_processes(client) -> WorkerProcesses:
    return WorkerProcesses(client)


class TrainTwice(LightningFlow):
    """Trains on two different lines, one after the other."""

    def __init__(self, root_dir: str):
        super().__init__()
        from components_models import NoisyLine, Regressor

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
    app = LightningApp(flow, cluster=cluster, storage=str(tmp_path_factory.mktemp("storage")))
    app.start()
    app.wait(300)
    up, down = flow.best
    return {"up": up, "down": down, "root_dir": root_dir}
