"""Take the screenshots of docs/screenshots/ for one lightnb checkout (the code before or after a fix).

    python scripts/screenshots.py --checkout PATH --suffix before|after [--out docs/screenshots]

Starts a JupyterLab on 127.0.0.1 (its own config, settings and workspaces) whose kernels import lightnb from
the checkout and which loads the checkout's built side panel (``PATH/lightnb/labextension``: build it first
with ``npm run build:prod`` in ``PATH/labextension``), writes the notebook of the views browser test
(tests/labextension/test_panel_browser.py) and runs ``labextension/ui-tests/screenshots.e2e.mjs`` of *this*
checkout against it: one shot per item, named ``13-<item>-<what>-<suffix>.png``. Needs node, this
checkout's ``labextension/node_modules`` and Debian's chromium, as the browser tests do.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(checkout: Path, home: Path) -> tuple[subprocess.Popen[bytes], str, str, Path]:
    root = home / "notebooks"
    root.mkdir()
    data = home / "data" / "labextensions"
    data.mkdir(parents=True)
    built = checkout / "lightnb" / "labextension"
    if not (built / "package.json").exists():
        raise SystemExit(f"{built} is not built: run `npm run build:prod` in {checkout / 'labextension'}")
    (data / "lightnb").symlink_to(built, target_is_directory=True)
    config = home / "config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_PATH": str(home / "data"), "JUPYTER_CONFIG_DIR": str(config),
           "JUPYTER_DATA_DIR": str(home / "user-data"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "PYTHONPATH": str(checkout)}
    log = (home / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while True:
        try:
            request = urllib.request.Request(f"{url}api/status", headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=5):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                tail = (home / "jupyterlab.log").read_text()[-3000:]
                raise SystemExit(f"JupyterLab did not start:\n{tail}") from None
            time.sleep(0.5)
    return server, url, token, root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--checkout", type=Path, required=True, help="the lightnb checkout to shoot")
    parser.add_argument("--suffix", required=True, help='"before" or "after": the end of each file name')
    parser.add_argument("--out", type=Path, default=HERE / "docs" / "screenshots")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE / "tests" / "labextension"))
    from test_panel_browser import VIEW_CELLS, write_notebook

    with tempfile.TemporaryDirectory(prefix="lightnb-shots-") as folder:
        server, url, token, root = start_lab(args.checkout.resolve(), Path(folder))
        try:
            notebook = write_notebook(root / "shots.ipynb", *VIEW_CELLS.values())
            env = {**os.environ, "LAB_URL": url, "LAB_TOKEN": token, "NOTEBOOK": notebook,
                   "CELLS": json.dumps(list(VIEW_CELLS)), "OUT": str(args.out.resolve()), "SUFFIX": args.suffix}
            done = subprocess.run([shutil.which("node") or "node", "ui-tests/screenshots.e2e.mjs"],
                                  cwd=HERE / "labextension", env=env, timeout=600)
            return done.returncode
        finally:
            server.terminate()  # the server shuts its kernels down, and with them their apps and clusters
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    sys.exit(main())
