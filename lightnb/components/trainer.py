"""``TrainerWork``: train a ``LightningModule`` with ``lightning.Trainer`` on a worker, its progress and
metrics streaming into the work's state, TensorBoard logs and checkpoints written where servers find them."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from ..core.compute import CloudCompute
from ..core.values import describe_type
from ..core.work import LightningWork
from ..storage import Drive, Path
from ._work import set_quietly, stop_signal

# How often, at most, the progress of a running training reaches the flow.
UPDATE_INTERVAL_SECONDS = 0.25
# How often, at most, a training's TensorBoard logs are put into its drive while it runs.
SYNC_INTERVAL_SECONDS = 5.0


class TrainerWork(LightningWork):
    """Fit a ``LightningModule`` with ``lightning.Trainer`` where the work runs.

    ``module`` is a ``LightningModule`` class or any factory returning one, called with ``module_params``;
    ``datamodule`` (optional) likewise with ``data_params``. ``trainer_kwargs`` go to ``lightning.Trainer``
    (plain values: they are state; Lightning callbacks go in ``callbacks``). The parameters are state, so a
    form can change them, and ``run(module_params=..., data_params=..., max_epochs=...)`` trains with new
    values (a new call: the same values do not train twice while ``cache_calls=True``).

    While it trains, ``epoch``, ``step``, ``total_steps``, ``progress`` (in [0, 1]) and ``metrics`` (the
    values the module logs) stream into the work's state, a few times a second. TensorBoard logs go to
    ``root_dir/<work name>/version_N`` (``log_dir``) — serve ``root_dir`` with :class:`TensorBoardWork` — and
    checkpoints to ``log_dir/checkpoints`` (``checkpoint_dir``): ``best_checkpoint`` (by ``monitor``, or the
    latest without one, with ``best_score``) and ``last_checkpoint`` are lightnb ``Path`` values, so a server on
    any worker or machine gets the file. With a ``drive``, the run's logs are put into it as it trains and
    the whole run at the end (``TensorBoardWork(drive)`` serves them from anywhere). ``stop()`` ends the
    training at the next step; the last checkpoint is saved first.

    Example
    -------
    >>> trainer = TrainerWork(Regressor, NoisyLine, module_params={"lr": 0.05}, data_params={"n": 512},
    ...                       max_epochs=5, monitor="val_loss")
    >>> # in a flow:
    >>> trainer.run(module_params={"lr": self.lr})
    >>> if trainer.has_succeeded:
    ...     self.server.checkpoint = trainer.best_checkpoint
    """

    def __init__(self, module: Callable[..., Any], datamodule: Callable[..., Any] | None = None, *,
                 module_params: dict[str, Any] | None = None, data_params: dict[str, Any] | None = None,
                 max_epochs: int = 1, monitor: str | None = None, mode: str = "min",
                 root_dir: str | os.PathLike[str] = "lightning_runs", trainer_kwargs: dict[str, Any] | None = None,
                 callbacks: list[Any] | None = None, drive: Drive | None = None, seed: int | None = None,
                 parallel: bool = False, cache_calls: bool = True, raise_exception: bool = True,
                 cloud_compute: CloudCompute | None = None) -> None:
        super().__init__(parallel=parallel, cache_calls=cache_calls, raise_exception=raise_exception,
                         cloud_compute=cloud_compute)
        if not callable(module):
            raise TypeError(f"TrainerWork module must be a LightningModule class or a function returning one, "
                            f"not {describe_type(module)}")
        if datamodule is not None and not callable(datamodule):
            raise TypeError(f"TrainerWork datamodule must be a LightningDataModule class or a function "
                            f"returning one, not {describe_type(datamodule)}")
        if drive is not None and not isinstance(drive, Drive):
            raise TypeError(f"TrainerWork drive must be a lightnb.Drive, not {describe_type(drive)}")
        if mode not in ("min", "max"):
            raise ValueError(f"TrainerWork mode must be 'min' or 'max' (for monitor={monitor!r}), not {mode!r}")
        self._module = module
        self._datamodule = datamodule
        self.module_params = _params("module_params", module_params)
        self.data_params = _params("data_params", data_params)
        self.max_epochs = _epochs(max_epochs)
        self.monitor = monitor
        self.mode = mode
        self.root_dir = os.fspath(root_dir)
        self.trainer_kwargs = _params("trainer_kwargs", trainer_kwargs)
        self._callbacks = list(callbacks or [])
        self.seed = seed
        self.drive = drive
        # Streamed while training.
        self.epoch = 0
        self.step = 0
        self.total_steps: int | None = None
        self.progress = 0.0
        self.metrics: dict[str, float] = {}
        # Where the run's files are.
        self.log_dir: str | None = None
        self.checkpoint_dir: str | None = None
        self.best_checkpoint: Path | None = None
        self.best_score: float | None = None
        self.last_checkpoint: Path | None = None

    def run(self, module_params: dict[str, Any] | None = None, data_params: dict[str, Any] | None = None,
            max_epochs: int | None = None) -> None:
        import lightning as L

        if module_params:
            self.module_params = {**self.module_params, **_params("module_params", module_params)}
        if data_params:
            self.data_params = {**self.data_params, **_params("data_params", data_params)}
        if max_epochs is not None:
            self.max_epochs = _epochs(max_epochs)
        self.epoch, self.step, self.progress, self.metrics = 0, 0, 0.0, {}
        self.best_checkpoint = self.best_score = self.last_checkpoint = None

        stopping, unregister = stop_signal(self)
        try:
            if self.seed is not None:
                L.seed_everything(self.seed, workers=True, verbose=False)
            model = _build("module", self._module, self.module_params, L.LightningModule)
            data = None
            if self._datamodule is not None:
                data = _build("datamodule", self._datamodule, self.data_params, L.LightningDataModule)
            trainer, checkpoints, sync = self._make_trainer(stopping)
            trainer.fit(model, datamodule=data)
        finally:
            unregister()
        sync.everything()
        self._report_end(trainer, checkpoints, stopped=stopping.is_set())

    def run_group(self) -> str:
        """The folder of this work's runs under ``root_dir`` (and in its drive): its name in the app."""
        name = self.name
        return name.split(".", 1)[1] if "." in name else name

    def _make_trainer(self, stopping: threading.Event) -> tuple[Any, Any, RunSync]:
        import lightning as L
        from lightning.pytorch.callbacks import ModelCheckpoint
        from lightning.pytorch.loggers import TensorBoardLogger

        logger = TensorBoardLogger(save_dir=self.root_dir, name=self.run_group(), default_hp_metric=False)
        self.log_dir = logger.log_dir
        self.checkpoint_dir = os.path.join(logger.log_dir, "checkpoints")
        checkpoints = ModelCheckpoint(dirpath=self.checkpoint_dir, monitor=self.monitor, mode=self.mode,
                                      save_top_k=1, save_last=True)
        sync = RunSync(self, logger.log_dir)
        options = {"enable_progress_bar": False, **self.trainer_kwargs}
        callbacks = [checkpoints, progress_callback_class()(self, stopping, sync), *self._callbacks]
        trainer = L.Trainer(max_epochs=self.max_epochs, logger=logger, callbacks=callbacks,
                            default_root_dir=self.root_dir, **options)
        return trainer, checkpoints, sync

    def _report_end(self, trainer: Any, checkpoints: Any, stopped: bool) -> None:
        best = checkpoints.best_model_path or None
        score = checkpoints.best_model_score
        last = checkpoints.last_model_path or None
        final = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "metrics": scalar_metrics(trainer.callback_metrics),
            # Paths: a server on another worker or machine gets the file (kept in the app's storage).
            "best_checkpoint": Path(best) if best else None,
            "best_score": None if score is None else float(score),
            "last_checkpoint": Path(last) if last and os.path.exists(last) else None,
        }
        if not stopped:
            final["progress"] = 1.0
        set_quietly(self, **final)  # after a stop too: the flow learns where the last checkpoint is


class RunSync:
    """Puts a run's files into the work's drive (if it has one): its TensorBoard logs every few seconds
    while it trains, the whole run (checkpoints included) at the end."""

    def __init__(self, work: TrainerWork, log_dir: str) -> None:
        self.drive: Drive | None = None
        if work.drive is not None:
            # Files are put from root_dir, under the work's own name in the drive.
            self.drive = Drive(work.drive.id, allow_duplicates=work.drive.allow_duplicates,
                               component_name=work.name, root_folder=work.root_dir)
        self.log_dir = log_dir
        self.relative = os.path.relpath(log_dir, work.root_dir).replace(os.sep, "/")
        self.last = 0.0

    def logs(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.drive is None or not (force or now - self.last >= SYNC_INTERVAL_SECONDS):
            return
        self.last = now
        for name in sorted(os.listdir(self.log_dir)):
            if os.path.isfile(os.path.join(self.log_dir, name)):
                self.drive.put(f"{self.relative}/{name}")

    def everything(self) -> None:
        if self.drive is not None and os.path.isdir(self.log_dir):
            self.drive.put(self.relative)


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The logged metrics that are single numbers, as floats (what the work's state can hold)."""
    found = {}
    for key, value in metrics.items():
        try:
            number = float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError, RuntimeError):
            continue
        if math.isfinite(number):
            found[str(key)] = number
    return found


@cache
def progress_callback_class() -> type:
    """The Lightning callback that streams a :class:`TrainerWork`'s progress (built on first use: lightning
    is imported only where training runs)."""
    import lightning as L

    class StreamProgress(L.Callback):
        """Streams epoch, step, progress and metrics into the work's state (at most every
        ``UPDATE_INTERVAL_SECONDS``), and stops the training at the next step once the work is stopped,
        saving the last checkpoint first."""

        def __init__(self, work: TrainerWork, stopping: threading.Event, sync: RunSync) -> None:
            self.work = work
            self.stopping = stopping
            self.sync = sync
            self.last_update = 0.0

        def on_train_start(self, trainer: Any, module: Any) -> None:
            total = trainer.estimated_stepping_batches
            self.work.total_steps = int(total) if math.isfinite(total) else None
            self._check_stop(trainer)

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            if self._check_stop(trainer):
                return
            now = time.monotonic()
            if now - self.last_update >= UPDATE_INTERVAL_SECONDS:
                self.last_update = now
                self._publish(trainer)

        def on_validation_end(self, trainer: Any, module: Any) -> None:
            if not self._check_stop(trainer) and not trainer.sanity_checking:
                self._publish(trainer)  # the epoch's validation metrics, as soon as they exist

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            self.sync.logs()  # TensorBoard on another machine follows the training through the drive

        def on_train_end(self, trainer: Any, module: Any) -> None:
            if self.stopping.is_set():
                # Stopped early: the next best thing to a finished training is where it got to.
                path = os.path.join(self.work.checkpoint_dir or trainer.default_root_dir, "last.ckpt")
                trainer.save_checkpoint(path)
                for callback in trainer.checkpoint_callbacks:
                    callback.last_model_path = path

        def _check_stop(self, trainer: Any) -> bool:
            if self.stopping.is_set():
                trainer.should_stop = True
                return True
            return False

        def _publish(self, trainer: Any) -> None:
            work = self.work
            step = trainer.global_step
            # metrics before step: a new step (what a Sweep reports to its study) comes with its metrics.
            update: dict[str, Any] = {"metrics": scalar_metrics(trainer.callback_metrics), "step": step,
                                      "epoch": trainer.current_epoch}
            if work.total_steps:
                update["progress"] = min(1.0, step / work.total_steps)
            # Quietly: a stop arriving now must end the training at the next step, not in the middle of a hook.
            set_quietly(work, **update)

    return StreamProgress


def _build(what: str, factory: Callable[..., Any], params: dict[str, Any], expected: type) -> Any:
    built = factory(**params)
    if not isinstance(built, expected):
        raise TypeError(f"TrainerWork {what} {getattr(factory, '__name__', factory)!r} made a "
                        f"{describe_type(built)}, not a {expected.__name__}")
    return built


def _params(name: str, params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(key, str) for key in params):
        raise TypeError(f"TrainerWork {name} must be a dict of keyword arguments, not {describe_type(params)}")
    return dict(params)


def _epochs(max_epochs: Any) -> int:
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < -1 or max_epochs == 0:
        raise ValueError(f"TrainerWork max_epochs must be a positive number of epochs (or -1 for no limit), "
                         f"not {max_epochs!r}")
    return max_epochs
