"""``StaticWebFrontend(serve_dir)``: a folder of static files (its ``index.html``) served as a flow's page."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.values import describe_type
from .base import Frontend


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class StaticWebFrontend(Frontend):
    """Serves the files of ``serve_dir`` (its ``index.html`` is the page) while the app runs.

    Example
    -------
    >>> class Root(LightningFlow):
    ...     def configure_layout(self):
    ...         return StaticWebFrontend("ui/build")
    """

    def __init__(self, serve_dir: str | os.PathLike[str]) -> None:
        if not isinstance(serve_dir, (str, os.PathLike)):
            raise TypeError(f"StaticWebFrontend takes the folder to serve, not {describe_type(serve_dir)}")
        folder = Path(serve_dir).expanduser().resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"StaticWebFrontend: the folder {str(serve_dir)!r} does not exist (looked for "
                                    f"{folder}); give the folder that holds the page's index.html")
        self.serve_dir = str(folder)
        self._server: http.server.ThreadingHTTPServer | None = None

    def start_server(self, host: str, port: int, env: Mapping[str, str]) -> None:
        handler = functools.partial(_QuietHandler, directory=self.serve_dir)
        server = http.server.ThreadingHTTPServer((host, port), handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="lightnb-static-web", daemon=True).start()

    def stop_server(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
