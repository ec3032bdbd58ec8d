"""Ready-made works: wrap the scripts, tools and servers you already have, and train with Lightning.

>>> from lightnb.components import (TracerPythonScript, PopenPythonScript, ShellWork, TensorBoardWork,
...                                 ServeGradio, ModelServer, TrainerWork, Sweep, LoadTest)

Heavy packages (torch, lightning, gradio, tensorboard, fastapi, optuna, locust) are imported only when a work runs.
"""

from .gradio import ServeGradio
from .loadtest import LoadTest
from .model_server import ModelServer
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
    "LoadTest",
    "ModelServer",
    "PopenPythonScript",
    "ServeGradio",
    "ShellWork",
    "Sweep",
    "TensorBoardWork",
    "TracerPythonScript",
    "TrainerWork",
]
