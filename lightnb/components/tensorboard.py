"""``TensorBoardWork``: TensorBoard for a folder of runs, served from a work until it is stopped."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..core.compute import CloudCompute
from ..core.values import describe_type
from ._serving import LOOPBACK, ServerWork, free_port
from .scripts import ProcessTree, child_environment


class _TensorBoardProcess:
    """The TensorBoard process as a :class:`~lightnb.components._serving.Server`."""

    def __init__(self, tree: ProcessTree) -> None:
        self.tree = tree

    def alive(self) -> bool:
        return self.tree.alive

    def stop(self) -> None:
        self.tree.end()

    def failure(self) -> str:
        if self.tree.alive:
            return "it is still starting"
        self.tree.wait()  # it exited: let its last words reach the tail
        code = self.tree.process.poll() if self.tree.process else None
        tail = self.tree.stderr_tail()
        return f"TensorBoard exited with code {code}" + (f"; the last lines of its stderr:\n{tail}" if tail else "")


class TensorBoardWork(ServerWork):
    """Serve TensorBoard for ``logdir`` (the folder a Lightning ``TensorBoardLogger`` writes to).

    It serves on 127.0.0.1 on a free port (``host``/``port`` to change that) in a process of its own, sets
    ``url`` once TensorBoard answers, and ends with the work. TensorBoard's pages use relative URLs, so they
    also work through the notebook's proxy (``{base_url}proxy/{port}/``, trailing slash included).

    Example
    -------
    >>> class Root(LightningFlow):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.tensorboard = TensorBoardWork("lightning_logs")
    ...     def run(self):
    ...         self.tensorboard.run()            # parallel: the flow goes on
    ...     def configure_layout(self):
    ...         return [{"name": "TensorBoard", "content": self.tensorboard}]
    """

    def __init__(self, logdir: str | os.PathLike[str] = "lightning_logs", *, reload_interval: float = 5.0,
                 host: str = LOOPBACK, port: int | None = None, parallel: bool = True, cache_calls: bool = True,
                 raise_exception: bool = True, cloud_compute: CloudCompute | None = None,
                 extra_args: list[str] | None = None) -> None:
        super().__init__(host, port, parallel=parallel, cache_calls=cache_calls, raise_exception=raise_exception,
                         cloud_compute=cloud_compute)
        if not isinstance(logdir, (str, os.PathLike)):
            raise TypeError(f"TensorBoardWork logdir must be a folder path, not {describe_type(logdir)}")
        self.logdir = os.fspath(logdir)
        self.reload_interval = float(reload_interval)
        self.extra_args = [str(arg) for arg in (extra_args or [])]

    def start_server(self, host: str, port: int | None) -> tuple[Any, int]:
        port = port or free_port(host)
        os.makedirs(self.logdir, exist_ok=True)  # TensorBoard shows an empty board for a folder still to come
        argv = [
            sys.executable, "-m", "tensorboard.main", "--logdir", self.logdir, "--host", host,
            "--port", str(port), "--reload_interval", str(self.reload_interval), *self.extra_args,
        ]
        tree = ProcessTree(argv, work=self, env=child_environment(None, PYTHONUNBUFFERED="1")).start()
        return _TensorBoardProcess(tree), port
