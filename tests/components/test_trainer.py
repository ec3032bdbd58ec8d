"""TrainerWork on a real cluster: real training, progress and metrics streamed, checkpoints, stopping early."""

from __future__ import annotations

import os

import pytest
import torch
from components_models import NoisyLine, Regressor
from components_support import wait_for

from lightnb import LightningApp, LightningFlow
from lightnb.components import TrainerWork


class Train(LightningFlow):
    def __init__(self, trainer):
        super().__init__()
        self.trainer = trainer
        self.lr = 0.05
        self.seen_progress = []

    def run(self):
        if self.trainer.progress not in self.seen_progress:
            self.seen_progress = [*self.seen_progress, self.trainer.progress]
        self.trainer.run(module_params={"lr": self.lr})
        if self.trainer.has_succeeded or self.trainer.has_stopped:
            self.stop("training ended")


def test_training_streams_progress_and_metrics_and_writes_the_best_checkpoint(cluster, tmp_path):
    trainer = TrainerWork(Regressor, NoisyLine, module_params={"hidden": 8, "slow": 0.02},
                          data_params={"n": 512}, max_epochs=4, monitor="val_loss", root_dir=tmp_path,
                          parallel=True)
    flow = Train(trainer)
    app = LightningApp(flow, cluster=cluster)
    app.start()
    # While it trains, the flow sees the work's progress move (training takes a few seconds: 48 slow steps).
    wait_for(lambda: 0 < trainer.progress < 1, what="progress in the middle of the training")
    wait_for(lambda: "val_loss" in trainer.metrics, what="the first epoch's validation loss")
    app.wait(300)

    assert trainer.has_succeeded, trainer.status.message
    assert trainer.total_steps == 4 * 12 and trainer.step == 48 and trainer.progress == 1.0
    assert trainer.epoch == 4
    assert trainer.module_params == {"hidden": 8, "slow": 0.02, "lr": 0.05}
    assert len([p for p in flow.seen_progress if 0 < p < 1]) >= 2  # several updates reached the flow
    assert trainer.metrics["val_loss"] < 0.5 and trainer.best_score <= trainer.metrics["val_loss"] + 1e-6
    assert trainer.log_dir == os.path.join(str(tmp_path), "trainer", "version_0")  # runs grouped by work
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(trainer.log_dir))
    assert os.path.dirname(trainer.best_checkpoint) == trainer.checkpoint_dir
    assert os.path.isfile(trainer.best_checkpoint) and os.path.isfile(trainer.last_checkpoint)

    # The checkpoint is a real, loadable model that learned the line y = 2x + 1.
    model = Regressor.load_from_checkpoint(trainer.best_checkpoint, map_location="cpu").eval()
    with torch.no_grad():
        prediction = model(torch.tensor([[0.5]])).item()
    assert abs(prediction - 2.0) < 0.5


def test_stop_ends_the_training_at_the_next_step_and_keeps_the_last_checkpoint(cluster, tmp_path):
    trainer = TrainerWork(Regressor, NoisyLine, module_params={"slow": 0.05}, data_params={"n": 4096},
                          max_epochs=50, root_dir=tmp_path, parallel=True)
    flow = Train(trainer)
    app = LightningApp(flow, cluster=cluster)
    app.start()
    wait_for(lambda: trainer.step >= 5, what="a few training steps")
    trainer.stop()
    app.wait(60)

    assert trainer.has_stopped
    assert 5 <= trainer.step < 50 * 96 and trainer.progress < 0.1
    assert str(trainer.last_checkpoint) == os.path.join(trainer.checkpoint_dir, "last.ckpt")
    saved = torch.load(trainer.last_checkpoint, map_location="cpu", weights_only=False)
    assert saved["global_step"] == trainer.step  # the checkpoint holds where the training got to


def test_a_new_learning_rate_from_the_flow_trains_again(cluster, tmp_path):
    trainer = TrainerWork(Regressor, NoisyLine, max_epochs=1, root_dir=tmp_path)

    class Retrain(LightningFlow):
        def __init__(self):
            super().__init__()
            self.trainer = trainer
            self.lr = 0.05
            self.runs = []

        def run(self):
            self.trainer.run(module_params={"lr": self.lr})
            if self.trainer.has_succeeded and self.trainer.log_dir not in self.runs:
                self.runs = [*self.runs, self.trainer.log_dir]
                if self.lr == 0.05:
                    self.lr = 0.01  # as a form would
                else:
                    self.stop("retrained")

    flow = Retrain()
    app = LightningApp(flow, cluster=cluster)
    app.start()
    app.wait(300)
    assert [os.path.basename(run) for run in flow.runs] == ["version_0", "version_1"]
    assert trainer.module_params["lr"] == 0.01
    assert Regressor.load_from_checkpoint(trainer.best_checkpoint).hparams.lr == 0.01


def test_a_factory_that_makes_something_else_fails_the_work_naming_it(cluster, tmp_path):
    def not_a_module(**params):
        return "a string"

    trainer = TrainerWork(not_a_module, root_dir=tmp_path, raise_exception=False)
    flow = Train(trainer)
    app = LightningApp(flow, cluster=cluster)
    app.start()
    wait_for(lambda: trainer.has_failed, what="the work to fail")
    app.stop()
    assert "not_a_module" in trainer.status.message and "LightningModule" in trainer.status.message


def test_bad_configuration_is_refused_at_once():
    with pytest.raises(TypeError, match="module"):
        TrainerWork("Regressor")
    with pytest.raises(ValueError, match="max_epochs"):
        TrainerWork(Regressor, max_epochs=0)
    with pytest.raises(TypeError, match="module_params"):
        TrainerWork(Regressor, module_params=[1, 2])
    with pytest.raises(ValueError, match="mode"):
        TrainerWork(Regressor, monitor="val_loss", mode="lowest")
