"""Ready-made works: wrap the scripts, tools and servers you already have, and train with Lightning.

>>> from lightnb.components import (TracerPythonScript, PopenPythonScript, ShellWork, TensorBoardWork,
...                                 ServeGradio, ModelServer, TrainerWork)

Heavy packages (torch, lightning, gradio, tensorboard, fastapi) are imported only when a work runs.
"""

from .gradio import ServeGradio
from .model_server import ModelServer
from .scripts import PopenPythonScript, ShellWork, TracerPythonScript
from .tensorboard import TensorBoardWork
from .trainer import TrainerWork

__all__ = [
    "ModelServer",
    "PopenPythonScript",
    "ServeGradio",
    "ShellWork",
    "TensorBoardWork",
    "TracerPythonScript",
    "TrainerWork",
]
