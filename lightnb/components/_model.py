"""A server of a model built from a checkpoint, which loads a new checkpoint without restarting.

The flow deploys a new model by setting the serving work's ``checkpoint``; the running work hears the change,
builds the new model beside the one it serves, and swaps them once the new one is ready. A checkpoint that
cannot be loaded leaves the previous model serving and says why in ``load_error``.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from ..core.component import log_output
from ..core.compute import CloudCompute
from ..core.values import describe_type
from ..storage import Path
from ._serving import LOOPBACK, ServerWork


class ModelServing(ServerWork):
    """Base of :class:`ServeGradio` and :class:`ModelServer`.

    State: ``checkpoint`` (what should be served; set it to deploy another: a path, or the lightnb ``Path``
    a training produced — its file is brought to wherever the server runs), ``loaded_checkpoint`` (what is
    served now), ``model_version`` (counts the models loaded) and ``load_error``.
    Override :meth:`build_model`; the default loads ``module_class`` from ``checkpoint`` on the CPU.
    """

    def __init__(self, checkpoint: str | Path | None = None, *, module_class: type | None = None,
                 host: str = LOOPBACK, port: int | None = None, parallel: bool = True, cache_calls: bool = True,
                 raise_exception: bool = True, cloud_compute: CloudCompute | None = None) -> None:
        super().__init__(host, port, parallel=parallel, cache_calls=cache_calls, raise_exception=raise_exception,
                         cloud_compute=cloud_compute)
        if module_class is not None and not callable(getattr(module_class, "load_from_checkpoint", None)):
            raise TypeError(f"{type(self).__name__} module_class must be a LightningModule class (with "
                            f"load_from_checkpoint), not {describe_type(module_class)}")
        self.checkpoint = _checkpoint_value(checkpoint)
        self.loaded_checkpoint: str | None = None
        self.model_version = 0
        self.load_error: str | None = None
        self._module_class = module_class
        self._model: Any = None

    def build_model(self) -> Any:
        """Build the model to serve (called on the worker, again whenever ``checkpoint`` changes).

        The default loads ``module_class`` from ``self.checkpoint`` on the CPU, in eval mode.
        """
        if self._module_class is None:
            raise NotImplementedError(
                f"{type(self).__name__} needs a model: give module_class=YourLightningModule (loaded from "
                "checkpoint=...), or override build_model() to return one."
            )
        if self.checkpoint is None:
            return None
        model = self._module_class.load_from_checkpoint(self.checkpoint, map_location="cpu")
        model.eval()
        return model

    @property
    def model(self) -> Any:
        """The model being served (what :meth:`build_model` returned)."""
        return self._model

    def prepare(self) -> None:
        self._load(initial=True)

    def on_state_change(self) -> None:
        if _key(self.checkpoint) != self.loaded_checkpoint:
            self._load(initial=False)

    def _load(self, initial: bool) -> None:
        wanted = _key(self.checkpoint)
        try:
            if isinstance(self.checkpoint, Path) and self.checkpoint.origin_name is not None:
                # Another work made it (possibly on another machine): bring the file here first.
                self.checkpoint.get(overwrite=True)
            model = self.build_model()
        except Exception as error:
            if initial:
                raise
            log_output(self, f"{self.name}: could not load {wanted}; still serving {self.loaded_checkpoint}:\n"
                             f"{traceback.format_exc()}", "stderr")
            self.load_error = f"{wanted}: {type(error).__name__}: {error}"
            return
        self._model = model  # one reference swap: a prediction uses either model, never half of one
        self.loaded_checkpoint = wanted
        self.load_error = None
        if model is not None:
            self.model_version += 1

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_model"] = None  # the model is built where the work runs, never shipped
        return state


def _checkpoint_value(checkpoint: Any) -> Any:
    if checkpoint is None or isinstance(checkpoint, (str, Path)):
        return checkpoint  # a lightnb Path keeps its origin: the server gets the file wherever it runs
    if isinstance(checkpoint, os.PathLike):
        return os.fspath(checkpoint)
    raise TypeError(f"checkpoint must be a path (a str, or a lightnb Path another work made), not "
                    f"{describe_type(checkpoint)}")


def _key(checkpoint: Any) -> str | None:
    return None if checkpoint is None else os.fspath(checkpoint)
