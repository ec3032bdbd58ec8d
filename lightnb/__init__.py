"""lightnb: the Lightning App model in Jupyter — flows step in the kernel, works run on Dask.

>>> from lightnb import LightningApp, LightningFlow, LightningWork
"""

from typing import Any

from .app import AppFailed, LightningApp, register_view
from .core.calls import WorkStageStatus, WorkStatus
from .core.compute import CloudCompute
from .core.flow import LightningFlow
from .core.work import LightningWork, WorkStopped
from .storage import Drive, Path, Payload
from .utilities.packaging.build_config import BuildConfig  # noqa: F401 - importable for ported apps (ignored)

__version__ = "0.1.0"


def _app_view(app: LightningApp) -> Any:
    from .ui import AppView  # the widget libraries load with the first view, not with lightnb

    return AppView(app)


register_view(_app_view)


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext lightnb``: the ``%lightnb`` magic, the side panel's comm target, shutdown hooks."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    from .magics import unload

    unload(ipython)


__all__ = [
    "AppFailed",
    "CloudCompute",
    "Drive",
    "LightningApp",
    "LightningFlow",
    "LightningWork",
    "Path",
    "Payload",
    "WorkStageStatus",
    "WorkStatus",
    "WorkStopped",
    "__version__",
]
