"""Fixtures of the frontend tests: a real Jupyter server with jupyter-server-proxy, the browser tests' Node
project."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lab_server import running_server

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "labextension"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class JupyterServer:
    url: str  # ends with /
    token: str
    log: Path

    def proxied(self, port: int, path: str = "") -> str:
        """The address of 127.0.0.1:port/path through the server's proxy, logged in with the token."""
        return f"{self.url}proxy/{port}/{path}?token={self.token}"

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A real Jupyter server on 127.0.0.1 with a token and jupyter-server-proxy (as JupyterLab runs it)."""
    home = tmp_path_factory.mktemp("jupyter")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    log = home / "server.log"
    cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={home}", "--ServerApp.allow_root=True"]
    found = JupyterServer(f"http://127.0.0.1:{port}/", token, log)
    with running_server(cmd, cwd=home, env=env, log=log, url=found.url, token=token, stop_seconds=30):
        yield found


@pytest.fixture(scope="session")
def browser_tools() -> Path:
    """labextension/ with playwright-core installed, and Chromium."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/setup does)"
    assert shutil.which("node"), "node is missing: install Node.js >= 18"
    if not (LABEXTENSION / "node_modules" / "playwright-core").exists():
        subprocess.run([shutil.which("npm") or "npm", "ci", "--no-audit", "--no-fund"], cwd=LABEXTENSION,
                       check=True, capture_output=True, timeout=600)
    return LABEXTENSION
