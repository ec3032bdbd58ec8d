"""Sweep on a real cluster: Optuna trials as works on worker processes, pruned as their steps stream in."""

from __future__ import annotations

import os
import time

import optuna
import pytest

from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.components import Sweep


class Quadratic(LightningWork):
    """Computes (x - 2)² in a few steps; fails for x > 6 (a broken corner of the search space)."""

    def __init__(self, x: float, steps: int = 3, pause: float = 0.0):
        super().__init__()  # blocking, raise_exception=True: the sweep must override both
        self.x = x
        self.steps = steps
        self.pause = pause
        self.metrics: dict = {}
        self.step = 0

    def run(self):
        if self.x > 6:
            raise ValueError(f"x={self.x} is out of the model's range")
        for step in range(1, self.steps + 1):
            time.sleep(self.pause)
            # Converges to (x - 2)² at the last step.
            self.metrics = {"loss": (self.x - 2) ** 2 + (self.steps - step) * 0.1}
            self.step = step


class Watch(LightningFlow):
    """Runs a sweep and records, on every pass, how many of its works were pending or running at once, and
    any trial shown as ended while its work had not."""

    def __init__(self, sweep: Sweep):
        super().__init__()
        self.sweep = sweep
        self.max_running = 0
        self.ended_early: list = []

    def run(self):
        self.sweep.run()
        running = sum(1 for work in self.sweep.works() if work.is_pending or work.is_running)
        self.max_running = max(self.max_running, running)
        for trial in self.sweep.trials:
            work = self.sweep.trial_works[str(trial["number"])]
            if trial["state"] != "running" and not work.status.stage.is_finished:
                self.ended_early = [*self.ended_early, [trial["number"], trial["state"], work.status.stage.value]]
        if self.sweep.done:
            self.stop("swept")


def test_a_sweep_finds_the_optimum_within_its_concurrency_and_records_failures(cluster, tmp_path):
    sweep = Sweep(lambda params: Quadratic(**params, pause=0.1),
                  lambda trial: {"x": trial.suggest_float("x", -3.0, 7.0)}, n_trials=12, concurrency=3,
                  metric="loss", sampler=optuna.samplers.RandomSampler(seed=7))
    flow = Watch(sweep)
    app = LightningApp(flow, cluster=cluster, storage=str(tmp_path / "storage"))
    app.start()
    app.wait(240)  # a failing trial work does not fail the app

    trials = sweep.trials
    assert [t["number"] for t in trials] == list(range(12))
    assert len(sweep.works()) == 12
    states = {t["state"] for t in trials}
    assert states == {"complete", "failed"}, trials  # no pruner: nothing pruned
    for trial in trials:
        x = trial["params"]["x"]
        if x > 6:
            assert trial["state"] == "failed" and trial["value"] is None
        else:
            assert trial["state"] == "complete"
            assert trial["value"] == pytest.approx((x - 2) ** 2)  # the last metrics["loss"]
    assert any(t["state"] == "failed" for t in trials) and trials[-1]["state"] in ("complete", "failed")
    complete = [t for t in trials if t["state"] == "complete"]
    best = min(complete, key=lambda t: t["value"])
    assert sweep.best_value == best["value"] and sweep.best_params == best["params"]
    assert sweep.best_trial == best["number"]
    assert abs(sweep.best_params["x"] - 2) < 0.05 and sweep.best_value < 0.01  # 12 random trials in [-3, 7]
    assert sweep.done
    assert flow.max_running == 3  # trials ran side by side, never more than 3
    assert flow.ended_early == []

    # The study is in the app's storage: Optuna reads it back, with the same trials.
    assert sweep.journal.startswith(str(tmp_path / "storage"))
    assert os.path.isfile(sweep.journal)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(sweep.journal))
    study = optuna.load_study(study_name=sweep.name, storage=storage)
    stored = {t.number: t for t in study.trials}
    assert len(stored) == 12
    for trial in trials:
        expected = {"complete": optuna.trial.TrialState.COMPLETE, "failed": optuna.trial.TrialState.FAIL}
        assert stored[trial["number"]].state == expected[trial["state"]]
        if trial["state"] == "complete":  # the steps the work streamed, as they were reported
            steps = stored[trial["number"]].intermediate_values
            assert set(steps) <= {1, 2, 3} and steps[3] == pytest.approx((trial["params"]["x"] - 2) ** 2)
    assert study.best_value == sweep.best_value


class Slow(LightningWork):
    """Reports its loss (x itself) at each of 8 steps, 0.25 s apart: the pruner has time to act."""

    def __init__(self, x: float):
        super().__init__(parallel=True, raise_exception=True)
        self.x = x
        self.metrics: dict = {}
        self.step = 0

    def run(self):
        for step in range(1, 9):
            time.sleep(0.25)
            self.metrics = {"val_loss": self.x}
            self.step = step


def test_the_median_pruner_stops_bad_trials_before_they_finish(cluster, tmp_path):
    xs = [0.1, 0.2, 5.0, 6.0, 7.0, 8.0]  # two good trials first, then bad ones
    sweep = Sweep(lambda params: Slow(**params), lambda trial: {"x": xs[trial.number]}, n_trials=len(xs), concurrency=2,
                  pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    flow = Watch(sweep)
    app = LightningApp(flow, cluster=cluster, storage=str(tmp_path / "storage"))
    started = time.monotonic()
    app.start()
    app.wait(240)
    took = time.monotonic() - started
    # The sweep's log says which trials it pruned, and when.
    assert sorted(app.logs("root.sweep")) == [
        f"trial {n}: pruned at step 1 (val_loss {x:g}); stopping root.sweep.trial_works.{n}"
        for n, x in enumerate(xs) if n >= 2]

    states = [t["state"] for t in sweep.trials]
    assert states[:2] == ["complete", "complete"]
    assert states[2:] == ["pruned"] * 4, sweep.trials
    assert sweep.best_params == {"x": 0.1} and sweep.best_value == pytest.approx(0.1)
    for number in range(2, 6):
        work = sweep.trial_works[str(number)]
        assert work.has_stopped
        assert work.step < 8, f"trial {number} ran to its end ({work.step} steps) instead of being pruned"
    assert flow.max_running == 2
    assert flow.ended_early == []
    assert took < 60


class Forgetful(Watch):
    """Forgets the sweep's private attributes (the Optuna study and trials) before every pass — what a resumed
    durable app starts with: only state is recorded."""

    def run(self):
        sweep = self.sweep
        sweep._study, sweep._live, sweep._reported, sweep._pruning = None, {}, {}, set()
        super().run()


def test_a_sweep_that_loses_its_private_attributes_goes_on_from_its_journal(cluster, tmp_path):
    xs = [0.1, 0.2, 5.0, 6.0, 7.0, 8.0]
    sweep = Sweep(lambda params: Slow(**params), lambda trial: {"x": xs[trial.number]}, n_trials=len(xs),
                  concurrency=2, pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    flow = Forgetful(sweep)
    app = LightningApp(flow, cluster=cluster, storage=str(tmp_path / "storage"))
    app.start()
    app.wait(240)
    assert [t["state"] for t in sweep.trials] == ["complete", "complete"] + ["pruned"] * 4, sweep.trials
    assert sweep.best_params == {"x": 0.1} and flow.max_running == 2 and flow.ended_early == []
    assert len(sweep.study.trials) == 6  # the study read back from the journal: no trial asked twice


class OneStep(LightningWork):
    """Reports its only step and returns at once: a prune decision on that step comes too late to stop it
    (the flow sees the step with the success, or the success reaches the app after the stop was asked)."""

    def __init__(self, x: float):
        super().__init__()
        self.x = x
        self.metrics: dict = {}
        self.step = 0

    def run(self):
        self.metrics = {"val_loss": self.x}
        self.step = 1


def test_a_trial_whose_work_succeeded_before_the_prune_reached_it_is_complete(cluster, tmp_path):
    xs = [0.1, 0.2, 5.0, 6.0, 7.0]
    sweep = Sweep(lambda params: OneStep(**params), lambda trial: {"x": xs[trial.number]}, n_trials=len(xs),
                  concurrency=1, pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    app = LightningApp(Watch(sweep), cluster=cluster, storage=str(tmp_path / "storage"))
    app.start()
    app.wait(120)
    assert [t["state"] for t in sweep.trials] == ["complete"] * 5, sweep.trials
    assert [t["value"] for t in sweep.trials] == xs
    assert sweep.best_value == 0.1


def test_a_suggest_that_returns_no_dict_fails_the_app_saying_so(cluster, tmp_path):
    from lightnb import AppFailed

    sweep = Sweep(lambda params: Quadratic(**params), lambda trial: [trial.suggest_float("x", 0, 4)], n_trials=2)
    app = LightningApp(Watch(sweep), cluster=cluster, storage=str(tmp_path / "storage"))
    app.start()
    with pytest.raises(AppFailed, match=r"suggest must return a dict of parameters \(str keys\), not list"):
        app.wait(60)
    assert sweep.works() == []


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="n_trials must be a whole number ≥ 1, not 0"):
        Sweep(Quadratic, lambda trial: {}, n_trials=0)
    with pytest.raises(ValueError, match="concurrency must be a whole number ≥ 1"):
        Sweep(Quadratic, lambda trial: {}, n_trials=2, concurrency=0)
    with pytest.raises(ValueError, match="direction must be 'minimize' or 'maximize', not 'down'"):
        Sweep(Quadratic, lambda trial: {}, n_trials=2, direction="down")
    with pytest.raises(TypeError, match="pruner must be an optuna.pruners pruner"):
        Sweep(Quadratic, lambda trial: {}, n_trials=2, pruner="median")
    with pytest.raises(TypeError, match="suggest must be a function"):
        Sweep(Quadratic, {"x": 1}, n_trials=2)


def test_with_object_storage_the_journal_is_written_locally_then_put_into_the_storage(cluster):
    # An Optuna journal needs a file it can lock and append to: on an object store (memory:// here, s3://
    # alike) it is written on the kernel's machine, and the finished study is put into the storage.
    import fsspec

    sweep = Sweep(lambda params: Quadratic(**params), lambda trial: {"x": trial.suggest_float("x", 0, 4)},
                  n_trials=2, concurrency=2, metric="loss")
    app = LightningApp(Watch(sweep), cluster=cluster, storage="memory://sweep-test")
    app.start()
    app.wait(120)
    assert not sweep.journal.startswith("memory:") and os.path.isabs(sweep.journal)
    assert sweep.journal_copy.endswith(f"/sweeps/{app.app_id}/root.sweep.journal")
    with fsspec.open(f"memory://{sweep.journal_copy.lstrip('/')}", "rb") as stored, \
            open(sweep.journal, "rb") as local:
        assert stored.read() == local.read()
