"""What every web frontend is: a server the app starts on 127.0.0.1 next to its flow, and stops with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STOP_GRACE = 5.0  # seconds a frontend's process has to end after SIGTERM before it is killed


class Frontend(ABC):
    """A web UI of a flow: ``configure_layout()`` returns it (alone or as a tab's ``content``); the app serves
    it on ``127.0.0.1:port`` while it runs and shows it as a tab. ``flow`` is the flow it belongs to (set by
    the app). ``env`` holds what ``AppState()`` in the frontend's process needs to reach the app."""

    flow: Any = None

    @abstractmethod
    def start_server(self, host: str, port: int, env: Mapping[str, str]) -> None:
        """Start serving on ``host:port`` and return (the server keeps running in the background)."""

    @abstractmethod
    def stop_server(self) -> None:
        """Stop serving; every process the frontend started has ended when this returns."""

    def failure(self) -> str | None:
        """Why the server ended on its own (None while it runs)."""
        return None

    def ready_path(self) -> str:
        """The path answered once the server is up."""
        return "/"


class ProcessFrontend(Frontend):
    """A frontend served by a child process (Streamlit, Panel): its output goes to a log file, quoted when it
    ends early; it ends when the app ends, and on its own if the process that started it dies."""

    _process: subprocess.Popen[bytes] | None = None
    _folder: tempfile.TemporaryDirectory[str] | None = None

    @abstractmethod
    def command(self, host: str, port: int, folder: Path) -> list[str]:
        """The arguments after ``python -m lightnb.frontend.launch`` (``folder``: a private scratch folder)."""

    def extra_env(self, folder: Path) -> dict[str, str]:
        return {}

    def start_server(self, host: str, port: int, env: Mapping[str, str]) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="lightnb-frontend-")
        folder = Path(self._folder.name)
        args = self.command(host, port, folder)
        paths = [os.getcwd(), *(p for p in sys.path if p and Path(p).is_dir())]
        child_env = {**os.environ, **env, **self.extra_env(folder), "LIGHTNB_PARENT_PID": str(os.getpid()),
                     "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
        self._log = folder / "server.log"
        with open(self._log, "wb") as log:
            self._process = subprocess.Popen([sys.executable, "-m", "lightnb.frontend.launch", *args],
                                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             env=child_env, cwd=os.getcwd(), start_new_session=True)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def failure(self) -> str | None:
        process = self._process
        if process is None or process.poll() is None:
            return None
        return f"{type(self).__name__} exited with code {process.returncode}:\n{self.log_tail()}"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self._log.read_text(errors="replace")[-chars:]
        except (AttributeError, OSError):
            return ""

    def stop_server(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(STOP_GRACE)
        folder, self._folder = self._folder, None
        if folder is not None:
            folder.cleanup()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the process and whatever it started (its own session)
    except (ProcessLookupError, PermissionError):
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass


def wait_until_serving(frontend: Frontend, url: str, deadline: float) -> str | None:
    """Poll ``url`` until it answers; the reason it never did (the server ended, the deadline passed)."""
    while True:
        failure = frontend.failure()
        if failure is not None:
            return failure
        try:
            with urllib.request.urlopen(url, timeout=2):
                return None
        except urllib.error.HTTPError:
            return None  # it answers
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            return f"{type(frontend).__name__} did not answer at {url} in time"
        time.sleep(0.1)
