"""Ready-made works: wrap the scripts, tools and servers you already have, and train with Lightning.

>>> from lightnb.components import (TracerPythonScript, PopenPythonScript, ShellWork, TensorBoardWork,
...                                 ServeGradio, ModelServer, TrainerWork, Sweep, LoadTest)

Heavy packages (torch, lightning, gradio, tensorboard, fastapi, optuna, locust) are imported only when a work runs.
"""

from typing import Any

from .gradio import ServeGradio
from .loadtest import LoadTest
from .model_server import ModelServer
from .python_server import IO_TYPES, PythonServer
from .scripts import PopenPythonScript, ShellWork, TracerPythonScript
from .sweep import Sweep
from .tensorboard import TensorBoardWork
from .trainer import TrainerWork
from .unsupported import (  # noqa: F401 - the reference's cloud-only components: importable, not supported
    AutoScaler,
    ColdStartProxy,
    FabricMultiNode,
    LightningTrainerMultiNode,
    MultiNode,
    PyTorchLightningMultiNode,
    PyTorchSpawnMultiNode,
)

__all__ = [
    "Category",
    "Image",
    "LoadTest",
    "ModelServer",
    "Number",
    "PopenPythonScript",
    "PythonServer",
    "ServeGradio",
    "ShellWork",
    "Sweep",
    "TensorBoardWork",
    "Text",
    "TracerPythonScript",
    "TrainerWork",
]


def __getattr__(name: str) -> Any:
    # The reference's request/response models (pydantic) are built on first use.
    if name in IO_TYPES:
        from . import python_server

        return getattr(python_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
