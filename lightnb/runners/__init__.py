"""The reference's runtimes (``lightning.app.runners``), as users' tests use them::

    MultiProcessRuntime(app, start_server=False).dispatch()

maps to running the app the lightnb way to its end (works on the default cluster): ``dispatch()`` returns once
the app ended, raises :class:`~lightnb.AppFailed` if it failed. Server and cloud options are ignored (lightnb
serves no REST API of the app's state; ``CloudRuntime`` says it is not supported).
"""

from __future__ import annotations

from typing import Any

from ..app import LightningApp
from ..core.unsupported import Feature, unsupported_class


class MultiProcessRuntime:
    """Run ``app`` to its end: ``MultiProcessRuntime(app, start_server=False).dispatch()``."""

    def __init__(self, app: LightningApp, start_server: bool = True, **options: Any) -> None:
        if not isinstance(app, LightningApp):
            raise TypeError(f"MultiProcessRuntime takes a lightnb.LightningApp, not {type(app).__name__}")
        self.app = app
        self.start_server = start_server
        self.options = options  # host, port, env, secrets...: the reference's server and process options

    def dispatch(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> None:
        """Start the app and return once it ended; :class:`~lightnb.AppFailed` if it failed."""
        from ..testing.testing import _run_to_the_end

        _run_to_the_end(self.app, timeout)

    def terminate(self) -> None:
        self.app.stop()


SingleProcessRuntime = MultiProcessRuntime  # flows already step in this process; works run on the cluster

CloudRuntime = unsupported_class("CloudRuntime", __name__, Feature(
    "CloudRuntime", "it deploys the app to the lightning.ai cloud",
    "run the app on any Dask cluster with LightningApp(root, cluster=...) or `lightnb run --cluster` instead"))

__all__ = ["CloudRuntime", "MultiProcessRuntime", "SingleProcessRuntime"]
