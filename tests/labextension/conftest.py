"""Fixtures of the JupyterLab extension's tests: its Node project, its build, a real JupyterLab server."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lab_server import running_server

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "labextension"  # the TypeScript sources
BUILT = REPO / "lightnb" / "labextension"  # the prebuilt extension they build into
ARTIFACTS = REPO / "test-artifacts"


def _newest_mtime(*folders: Path) -> float:
    return max((p.stat().st_mtime for folder in folders for p in folder.rglob("*") if p.is_file()), default=0)


def _run(cmd: list[str], cwd: Path, timeout: float) -> None:
    # This environment's scripts (jupyter-builder) first on PATH, even when it is not activated.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PATH": path})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd} ({done.returncode}):\n{done.stdout[-3000:]}\n"
                           f"{done.stderr[-3000:]}")


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """labextension/ with its locked Node dependencies installed (scripts/setup installs them; this only
    fills in what is missing)."""
    npm = shutil.which("npm")
    assert npm, "npm is missing: install Node.js >= 18 (scripts/setup says how)"
    if not (LABEXTENSION / "node_modules" / ".package-lock.json").exists():
        _run([npm, "ci", "--no-audit", "--no-fund"], LABEXTENSION, timeout=600)
    return LABEXTENSION / "node_modules"


@pytest.fixture(scope="session")
def built_labextension(node_modules: Path) -> Path:
    """lightnb/labextension/ built from the current sources (rebuilt when a source is newer)."""
    sources = max(_newest_mtime(LABEXTENSION / "src", LABEXTENSION / "style"),
                  (LABEXTENSION / "package.json").stat().st_mtime)
    if not (BUILT / "package.json").exists() or _newest_mtime(BUILT) < sources:
        _run([shutil.which("npm") or "npm", "run", "build:prod"], LABEXTENSION, timeout=600)
    assert (BUILT / "static" / "style.js").exists(), f"the build left no extension in {BUILT}"
    return BUILT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    url: str  # ends with /
    token: str
    root: Path  # the server's notebook folder
    log: Path

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


@pytest.fixture(scope="module")
def jupyter_lab(built_labextension: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A real JupyterLab on 127.0.0.1 with a token, loading this checkout's extension and kernel code
    (the kernel imports lightnb from this checkout), with its own config, settings and workspaces."""
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "notebooks"
    root.mkdir()
    data = home / "data" / "labextensions"
    data.mkdir(parents=True)
    (data / "lightnb").symlink_to(built_labextension, target_is_directory=True)
    config = home / "config"
    (config / "labconfig").mkdir(parents=True)
    # No news or update pop-ups over the UI under test.
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_PATH": str(home / "data"),
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(home / "user-data"),  # no user-level extensions, settings or signing key
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    log = home / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",  # CI machines often run as root
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to run cells from the test
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    lab = LabServer(f"http://127.0.0.1:{port}/", token, root, log)
    # Ending the server shuts its kernels down, and with them their apps and clusters.
    with running_server(cmd, cwd=root, env=env, log=log, url=lab.url, token=token, what="JupyterLab"):
        yield lab
