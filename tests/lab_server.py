"""A Jupyter server (JupyterLab, or the bare server) started for a test: up once its status API answers,
terminated afterwards (which shuts its kernels down, and with them their apps and clusters)."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def answers(url: str, token: str) -> bool:
    """Whether ``{url}api/status`` answers 200 to this token."""
    request = urllib.request.Request(f"{url}api/status", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


@contextmanager
def running_server(command: list[str], *, cwd: Path, env: Mapping[str, str], log: Path, url: str, token: str,
                   what: str = "the Jupyter server", start_seconds: float = 90,
                   stop_seconds: float = 60) -> Iterator[subprocess.Popen]:
    """Start ``command`` (its output to ``log``), wait until it serves ``url`` or fail with its log's tail,
    and end it on the way out."""
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + start_seconds
        while not answers(url, token):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise RuntimeError(f"{what} did not start (exit code {server.poll()}):\n{tail}")
            time.sleep(0.3)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(stop_seconds)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


__all__ = ["answers", "running_server"]
