"""``Sweep``: a hyper-parameter search with Optuna, one work per trial on the cluster, pruned as it streams.

The flow asks Optuna for a trial, builds its work with ``trial_work(params)`` and runs it (in parallel, up
to ``concurrency`` at once). A trial work reports its progress by setting ``metrics`` (a dict) and then
``step`` (an int); every new ``step`` is reported to the study, and when the pruner says so the flow stops
the work: the trial ends "pruned". A work that succeeds completes its trial with its last
``metrics[metric]``; one that fails marks its trial "failed" and the sweep goes on.

>>> class Quadratic(LightningWork):
...     def __init__(self, x):
...         super().__init__()
...         self.x, self.metrics, self.step = x, {}, 0
...     def run(self):
...         for step in range(1, 4):
...             self.metrics = {"loss": (self.x - 2) ** 2 / step}
...             self.step = step
>>> sweep = Sweep(lambda params: Quadratic(**params), lambda trial: {"x": trial.suggest_float("x", -5, 5)},
...               n_trials=20, metric="loss")
>>> # LightningApp(sweep).start(); ... sweep.best_params → {"x": 2.03}

Optuna is imported only when the sweep first runs (``pip install lightnb[sweep]``).
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable
from typing import Any

from ..core.flow import LightningFlow
from ..core.structures import Dict
from ..core.values import describe_type
from ..core.view import ComponentView
from ..core.work import LightningWork
from ..storage.store import current_app_id, storage_url

# Where a sweep's Optuna journal is kept, under the app's storage root.
SWEEP_FOLDER = "sweeps"
_DIRECTIONS = ("minimize", "maximize")
# What lightnb's call table says of a work stopped after its call had already ended (core/calls.py).
_STOPPED_AFTER = "stopped after the call had "
# The trial's user attribute saying the sweep stopped its work to prune it (the step it was pruned at).
_PRUNING = "lightnb_pruned_at_step"


class Sweep(LightningFlow):
    """Run ``n_trials`` Optuna trials, each as its own work on the cluster, ``concurrency`` at a time.

    Parameters
    ----------
    trial_work:
        ``trial_work(params) -> LightningWork``: a new work for one trial. The sweep calls its ``run()`` with
        no arguments. Whatever flags it was built with, it runs in parallel and its failure never fails the
        app (the trial is "failed" instead).
    suggest:
        ``suggest(trial: optuna.Trial) -> dict``: the trial's parameters (``trial.suggest_float(...)``, ...).
    n_trials, concurrency:
        Exactly ``n_trials`` trials run, at most ``concurrency`` works at once (one being stopped counts).
    metric, direction:
        The key of the works' ``metrics`` the study optimizes, ``"minimize"`` or ``"maximize"``.
    pruner:
        An ``optuna.pruners`` pruner (``MedianPruner()``...); ``None``: no pruning.
    sampler:
        An ``optuna.samplers`` sampler (``TPESampler(seed=0)``...); ``None``: Optuna's default.

    State: ``trials`` (a list of ``{"number", "params", "state", "value"}``, ``state`` one of "running",
    "complete", "pruned", "failed" — it changes only once the trial's work has ended), ``best_params``,
    ``best_value``, ``best_trial`` (its number), ``done``, and ``journal`` (where the study is stored). The
    works are ``trial_works`` (keyed by trial number), so ``sweep.works()`` lists them; ``sweep.study`` is the
    Optuna study.

    The AppView shows it as a live table of its trials (state, params, value; the best one highlighted)
    and a chart of the value against the trial.

    The study lives in the app's storage: an Optuna ``JournalStorage`` file
    ``<storage root>/sweeps/<app id>/<sweep name>.journal``, which ``optuna.load_study`` reads afterwards. Only
    the flow (in the kernel) writes it. With an object store as the storage root (``s3://...``, where a
    journal file cannot be locked and appended to), the journal is kept in a local folder of the kernel's
    machine instead (``$TMPDIR/lightnb-sweeps/...``, ``journal`` says where) and put into the storage, at
    the same key, once the sweep is done (``journal_copy``). The Optuna objects are private attributes, not
    state: a flow that starts again with only its state (a resumed app) opens the study again, and finds its
    running trials, the steps they reported and the prunes it asked for in the journal.
    """

    _view = ComponentView("sweep", ("trials", "best_trial", "best_value", "metric", "direction", "n_trials"))

    def __init__(self, trial_work: Callable[[dict[str, Any]], LightningWork],
                 suggest: Callable[[Any], dict[str, Any]], n_trials: int, concurrency: int = 4,
                 metric: str = "val_loss", direction: str = "minimize", pruner: Any = None,
                 sampler: Any = None) -> None:
        super().__init__()
        if not callable(trial_work):
            raise TypeError(f"Sweep trial_work must be a function params -> LightningWork (such as "
                            f"lambda params: Train(**params)), not {describe_type(trial_work)}")
        if not callable(suggest):
            raise TypeError(f"Sweep suggest must be a function optuna.Trial -> dict of params, not "
                            f"{describe_type(suggest)}")
        for name, value in (("n_trials", n_trials), ("concurrency", concurrency)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Sweep {name} must be a whole number ≥ 1, not {value!r}")
        if not isinstance(metric, str) or not metric:
            raise TypeError(f"Sweep metric must be the name of a key of the works' metrics dict, not {metric!r}")
        if direction not in _DIRECTIONS:
            raise ValueError(f"Sweep direction must be 'minimize' or 'maximize', not {direction!r}")
        if pruner is not None and not callable(getattr(pruner, "prune", None)):
            raise TypeError(f"Sweep pruner must be an optuna.pruners pruner (e.g. MedianPruner()) or None for no "
                            f"pruning, not {describe_type(pruner)}")
        if sampler is not None and not callable(getattr(sampler, "sample_relative", None)):
            raise TypeError(f"Sweep sampler must be an optuna.samplers sampler (e.g. TPESampler(seed=0)) or None, "
                            f"not {describe_type(sampler)}")
        self._trial_work = trial_work
        self._suggest = suggest
        self._pruner = pruner
        self._sampler = sampler
        self.n_trials = n_trials
        self.concurrency = concurrency
        self.metric = metric
        self.direction = direction
        self.trials: list[dict[str, Any]] = []
        self.best_params: dict[str, Any] | None = None
        self.best_value: float | None = None
        self.best_trial: int | None = None  # the number of the best trial (its work: trial_works[str(n)])
        self.done = False
        self.journal: str | None = None
        self.journal_copy: str | None = None  # with object storage: where the finished journal was put
        self.trial_works = Dict()
        # Not state: the Optuna study and the live trials, by number (flow side only).
        self._study: Any = None
        self._live: dict[int, Any] = {}
        self._reported: dict[int, int] = {}  # the last step reported to the study, by trial number
        self._pruning: set[int] = set()       # trials whose work the sweep stopped

    @property
    def study(self) -> Any:
        """The Optuna study (``None`` before the sweep's first pass)."""
        return self._study

    # -- the flow ----------------------------------------------------------------------------------------
    def run(self) -> None:
        if self.done:
            return
        if self._study is None:
            self._study = self._create_study()
        running = 0
        for entry in self.trials:
            if entry["state"] == "running" and not self._follow(entry):
                running += 1
        while len(self.trials) < self.n_trials and running < self.concurrency:
            self._launch()
            running += 1
        if running == 0 and len(self.trials) >= self.n_trials:
            self._keep_journal()
            self.done = True

    def _create_study(self) -> Any:
        import optuna

        path = self._journal_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        storage = optuna.storages.JournalStorage(journal_backend(path))
        study = optuna.create_study(storage=storage, study_name=self.name, direction=self.direction,
                                    pruner=self._pruner or optuna.pruners.NopPruner(), sampler=self._sampler,
                                    load_if_exists=True)
        self.journal = path
        return study

    def _journal_key(self) -> str:
        return f"{SWEEP_FOLDER}/{current_app_id() or 'no-app'}/{self.name}.journal"

    def _journal_path(self) -> str:
        root = storage_url(component=self)
        relative = os.path.join(*self._journal_key().split("/"))
        if "://" in root:
            if not root.startswith("file://"):
                import tempfile

                return os.path.join(tempfile.gettempdir(), "lightnb-sweeps", relative)
            root = root.removeprefix("file://")
        return os.path.join(root, relative)

    def _keep_journal(self) -> None:
        """With object storage, put the finished study's journal into it (the same key as on a folder)."""
        root = storage_url(component=self)
        if "://" not in root or root.startswith("file://") or self.journal is None:
            return
        from ..storage.store import open_store

        store = open_store(root)
        store.upload(self.journal, self._journal_key())
        self.journal_copy = store.location(self._journal_key())

    def _launch(self) -> None:
        trial = self._study.ask()
        params = self._suggest(trial)
        if not isinstance(params, dict) or not all(isinstance(key, str) for key in params):
            self._study.tell(trial, state=_trial_state("FAIL"))
            raise TypeError(f"Sweep suggest must return a dict of parameters (str keys), not "
                            f"{describe_type(params)}")
        work = self._trial_work(dict(params))
        if not isinstance(work, LightningWork):
            self._study.tell(trial, state=_trial_state("FAIL"))
            raise TypeError(f"Sweep trial_work must return a new LightningWork for each trial, not "
                            f"{describe_type(work)} (for params {params})")
        if work._parent is not None:
            self._study.tell(trial, state=_trial_state("FAIL"))
            raise ValueError(f"Sweep trial_work returned {work.name}, which is already part of an app: it must "
                             "build a new work for each trial")
        # Whatever it was built with: trials run side by side, and a failing one never fails the app.
        work._parallel = True
        work._raise_exception = False
        number = trial.number
        self._live[number] = trial
        # Only a step the work sets counts: the one it was built with (0, say) is no report, even when its
        # first metrics reach the flow before its first step does.
        self._reported[number] = getattr(work, "step", None)
        self.trial_works[str(number)] = work
        self.trials = [*self.trials, {"number": number, "params": _plain(params), "state": "running",
                                      "value": None}]
        work.run()

    def _follow(self, entry: dict[str, Any]) -> bool:
        """Report what the trial's work streamed, prune it if the study says so, and end the trial once
        the work has ended. Returns whether the trial ended."""
        number = entry["number"]
        trial = self._trial(number)
        if trial is None:
            return True
        if str(number) not in self.trial_works:
            self._end_trial(entry, trial, "failed", note="its work is not in the app (it was not restored)")
            return True
        work = self.trial_works[str(number)]
        status = work.status
        ended = status.stage.is_finished
        value = self._report(trial, number, work)
        if not ended:
            if value is not None and number not in self._pruning and trial.should_prune():
                self._pruning.add(number)
                trial.set_user_attr(_PRUNING, self._reported[number])  # known again after a resume
                print(f"trial {number}: pruned at step {self._reported[number]} ({self.metric} {value:g}); "
                      f"stopping {work.name}")
                work.stop()
            return False

        message = status.message or ""
        stage = status.stage.value
        if stage == "stopped" and message.startswith(_STOPPED_AFTER):
            # The stop crossed a call that had already ended: what counts is how it ended.
            stage = message[len(_STOPPED_AFTER):].split(";", 1)[0].strip()
        final = _metric(work, self.metric)
        if stage == "succeeded" and final is not None:
            self._end_trial(entry, trial, "complete", final)
        elif stage == "stopped" and number in self._pruning:
            self._end_trial(entry, trial, "pruned")
        elif stage == "succeeded":
            self._end_trial(entry, trial, "failed", note=f"its work ended without a number in "
                                                         f"metrics[{self.metric!r}] (metrics: "
                                                         f"{getattr(work, 'metrics', None)!r})")
        else:
            last = message.strip().splitlines()[-1] if message.strip() else stage
            self._end_trial(entry, trial, "failed", note=f"{work.name} {stage}: {last}")
        return True

    def _end_trial(self, entry: dict[str, Any], trial: Any, state: str, final: float | None = None,
                   note: str | None = None) -> None:
        """Tell the study how the trial ended (unless it already knows) and show it in ``trials``."""
        number = entry["number"]
        if trial is not None:
            if state == "complete":
                frozen = self._study.tell(trial, final)
            else:
                frozen = self._study.tell(trial, state=_trial_state("PRUNED" if state == "pruned" else "FAIL"))
            value = frozen.value
        else:
            value = final
        if note:
            print(f"trial {number} failed: {note}")
        value = value if state != "failed" else None
        self._live.pop(number, None)
        self._reported.pop(number, None)
        self._pruning.discard(number)
        self.trials = [{**item, "state": state, "value": value} if item["number"] == number else item
                       for item in self.trials]
        if state == "complete" and value is not None:
            self._update_best(number, entry["params"], value)

    def _trial(self, number: int) -> Any:
        """The live Optuna trial of a running trial. After a resume (private attributes start empty) it is
        found again in the journal, with the steps already reported and whether its pruning was asked; a
        trial the journal says has ended is shown as ended, and ``None`` returned."""
        trial = self._live.get(number)
        if trial is not None:
            return trial
        import optuna

        frozen = next((t for t in self._study.get_trials(deepcopy=False) if t.number == number), None)
        entry = next(item for item in self.trials if item["number"] == number)
        if frozen is None:
            self._end_trial(entry, None, "failed", note="the study's journal does not have it")
            return None
        ended = {optuna.trial.TrialState.COMPLETE: "complete", optuna.trial.TrialState.PRUNED: "pruned",
                 optuna.trial.TrialState.FAIL: "failed"}.get(frozen.state)
        if ended is not None:
            self._end_trial(entry, None, ended, frozen.value)
            return None
        trial = optuna.trial.Trial(self._study, frozen._trial_id)
        self._live[number] = trial
        if frozen.intermediate_values:
            self._reported[number] = max(frozen.intermediate_values)
        if _PRUNING in frozen.user_attrs:
            self._pruning.add(number)
        return trial

    def _report(self, trial: Any, number: int, work: LightningWork) -> float | None:
        """Report a new ``step`` with its ``metrics[metric]``; the value reported, or ``None``."""
        step = getattr(work, "step", None)
        if isinstance(step, bool) or not isinstance(step, int) or step == self._reported.get(number):
            return None
        value = _metric(work, self.metric)
        if value is None:
            return None
        self._reported[number] = step
        trial.report(value, step)
        return value

    def _update_best(self, number: int, params: dict[str, Any], value: float) -> None:
        better = (self.best_value is None
                  or (value < self.best_value if self.direction == "minimize" else value > self.best_value))
        if better:
            self.best_value = value
            self.best_params = params
            self.best_trial = number

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_study"] = None  # an open Optuna storage stays where it was opened
        state["_live"] = {}
        return state


def journal_backend(path: str) -> Any:
    """Optuna's journal file at ``path``, written without an ``fsync`` for intermediate values.

    Optuna syncs every append to disk (~2 ms each here); a sweep reports every step of every trial from the
    flow, whose passes must stay quick. A step's value is still written (and read back by the pruner) at
    once; it reaches the disk with the next synced write — a trial asked or ended — so what a crash of the
    machine (not of the process) can lose is the latest steps, never a trial.
    """
    return _journal_class()(path)


@functools.cache
def _journal_class() -> type:
    from optuna.storages.journal import JournalFileBackend

    try:
        from optuna.storages.journal._storage import JournalOperation

        unsynced = {int(JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE)}
    except (ImportError, AttributeError):  # another Optuna layout: sync everything, as Optuna does
        unsynced = set()

    class StepsUnsyncedJournal(JournalFileBackend):
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            if not unsynced or not logs or any(log.get("op_code") not in unsynced for log in logs):
                super().append_logs(logs)
                return
            from optuna.storages.journal._file import get_lock_file

            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            with get_lock_file(self._lock), open(self._file_path, "ab") as out:
                out.write(text.encode("utf-8"))

    return StepsUnsyncedJournal


def _metric(work: LightningWork, metric: str) -> float | None:
    metrics = getattr(work, "metrics", None)
    if not isinstance(metrics, dict):
        return None
    value = metrics.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _trial_state(name: str) -> Any:
    import optuna

    return getattr(optuna.trial.TrialState, name)


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """The params as state (JSON values): numbers, strings, booleans, None; anything else as its repr."""
    plain = {}
    for key, value in params.items():
        if hasattr(value, "item") and callable(value.item):  # numpy scalars
            value = value.item()
        plain[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
    return plain
