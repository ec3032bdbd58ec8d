"""``TensorBoardWork``: TensorBoard for a folder of runs or a drive, served from a work until it is stopped."""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from typing import Any

from ..core.component import log_output
from ..core.compute import CloudCompute
from ..core.values import describe_type
from ..storage import Drive
from . import _tensorboard_main
from ._serving import LOOPBACK, ServerWork, free_port
from .scripts import ProcessTree, child_environment


class _TensorBoardProcess:
    """The TensorBoard process as a :class:`~lightnb.components._serving.Server`."""

    def __init__(self, tree: ProcessTree, mirror: str | None) -> None:
        self.tree = tree
        self.mirror = mirror  # the local copy of a drive's runs, removed with the server

    def alive(self) -> bool:
        return self.tree.alive

    def stop(self) -> None:
        self.tree.end()
        if self.mirror is not None:
            shutil.rmtree(self.mirror, ignore_errors=True)

    def failure(self) -> str:
        if self.tree.alive:
            return "it is still starting"
        self.tree.wait()  # it exited: let its last words reach the tail
        code = self.tree.process.poll() if self.tree.process else None
        tail = self.tree.stderr_tail()
        return f"TensorBoard exited with code {code}" + (f"; the last lines of its stderr:\n{tail}" if tail else "")


class TensorBoardWork(ServerWork):
    """Serve TensorBoard for ``logdir``: the folder a Lightning ``TensorBoardLogger`` writes to, or a
    ``Drive`` (such as the one a :class:`TrainerWork` puts its runs in), followed every ``reload_interval``
    seconds — so TensorBoard can run on another machine than the training.

    It serves on 127.0.0.1 on a free port (``host``/``port`` to change that) in a process of its own, sets
    ``url`` once TensorBoard answers, and ends with the work. TensorBoard's pages use relative URLs (its
    fonts' absolute ones are made relative, see ``_tensorboard_main``), so they also work through the
    notebook's proxy (``{base_url}proxy/{port}/``, trailing slash included).

    Example
    -------
    >>> class Root(LightningFlow):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.tensorboard = TensorBoardWork("lightning_runs")     # or a Drive
    ...     def run(self):
    ...         self.tensorboard.run()            # parallel: the flow goes on
    ...     def configure_layout(self):
    ...         return [{"name": "TensorBoard", "content": self.tensorboard}]
    """

    def __init__(self, logdir: str | os.PathLike[str] | Drive = "lightning_runs", *, reload_interval: float = 5.0,
                 host: str = LOOPBACK, port: int | None = None, parallel: bool = True, cache_calls: bool = True,
                 raise_exception: bool = True, cloud_compute: CloudCompute | None = None,
                 extra_args: list[str] | None = None) -> None:
        super().__init__(host, port, parallel=parallel, cache_calls=cache_calls, raise_exception=raise_exception,
                         cloud_compute=cloud_compute)
        if isinstance(logdir, Drive):
            self.logdir: str | Drive = logdir
        elif isinstance(logdir, (str, os.PathLike)):
            self.logdir = os.fspath(logdir)
        else:
            raise TypeError(f"TensorBoardWork logdir must be a folder path or a lightnb Drive, not "
                            f"{describe_type(logdir)}")
        self.reload_interval = float(reload_interval)
        self.extra_args = [str(arg) for arg in (extra_args or [])]
        self._mirror: str | None = None
        self._mirrored: dict[str, Any] = {}  # what the mirror holds: only changed files are brought again

    def start_server(self, host: str, port: int | None) -> tuple[Any, int]:
        port = port or free_port(host)
        if isinstance(self.logdir, Drive):
            self._mirror = tempfile.mkdtemp(prefix="lightnb-tensorboard-")
            self._mirrored = {}
            self.on_tick()
            folder = self._mirror
        else:
            folder = self.logdir
            os.makedirs(folder, exist_ok=True)  # TensorBoard shows an empty board for runs still to come
        argv = [
            *_tensorboard_main.command(), "--logdir", folder, "--host", host,
            "--port", str(port), "--reload_interval", str(self.reload_interval), *self.extra_args,
        ]
        tree = ProcessTree(argv, work=self, env=child_environment(None, PYTHONUNBUFFERED="1")).start()
        return _TensorBoardProcess(tree, self._mirror), port

    def tick_seconds(self) -> float:
        return self.reload_interval if isinstance(self.logdir, Drive) else super().tick_seconds()

    def on_tick(self) -> None:
        """With a drive: bring its runs into the local folder TensorBoard reads."""
        if not isinstance(self.logdir, Drive) or self._mirror is None:
            return
        mirror = Drive(self.logdir.id, root_folder=self._mirror)
        for entry in mirror.list("."):
            try:
                mirror._refresh(entry, self._mirrored)
            except Exception:  # one unreadable entry must not take TensorBoard down; say why in the log
                log_output(self, f"{self.name}: could not bring {entry!r} from {self.logdir.id}:\n"
                                 f"{traceback.format_exc()}", "stderr")

