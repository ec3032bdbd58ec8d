"""TensorBoard through the notebook server's proxy in a real headless Chromium, against a real JupyterLab
(with jupyter-server-proxy) and a TensorBoardWork on a real Dask cluster (ui-tests/tensorboard.e2e.mjs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from lightnb import LightningApp, LightningFlow
from lightnb.components import TensorBoardWork

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "labextension"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class ShowBoard(LightningFlow):
    def __init__(self, logdir: str) -> None:
        super().__init__()
        self.board = TensorBoardWork(logdir, reload_interval=1)

    def run(self) -> None:
        self.board.run()


def run_e2e(script: str, env: dict[str, str], lab: Any, timeout: float = 300) -> dict[str, Any]:
    """Run ``ui-tests/<script>`` with ``env``; its ``E2E-RESULT`` (asserted ok, with its steps otherwise)."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/setup does)"
    ARTIFACTS.mkdir(exist_ok=True)
    full = {**os.environ, "LAB_URL": lab.url, "LAB_TOKEN": lab.token, "ARTIFACTS": str(ARTIFACTS),
            "CHROMIUM": CHROMIUM, **env}
    try:
        done = subprocess.run([shutil.which("node") or "node", f"ui-tests/{script}"], cwd=LABEXTENSION, env=full,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the browser test ran over {timeout} s:\n{error.stdout}\n{error.stderr}\n"
                    f"JupyterLab log:\n{lab.log_tail()}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("E2E-RESULT ")]
    assert lines, (f"the browser test printed no result (exit code {done.returncode}):\n{done.stdout}\n"
                   f"{done.stderr}\nJupyterLab log:\n{lab.log_tail()}")
    result = json.loads(lines[-1].removeprefix("E2E-RESULT "))
    assert result["ok"], (f"{result['error']}\nsteps:\n" + "\n".join(result["steps"]) +
                          f"\n{json.dumps({k: v for k, v in result.items() if k != 'steps'})[:4000]}"
                          f"\n{done.stderr[-3000:]}\nJupyterLab log:\n{lab.log_tail()}")
    assert done.returncode == 0
    return result


def test_tensorboard_through_the_proxy_loads_with_no_404(jupyter_lab, cluster, tmp_path) -> None:
    """TensorBoard's page asks for its fonts at the server's root (``url(/font-roboto/...)``); through
    ``{base_url}proxy/{port}/`` that is the notebook server's root, which answers 404. The work serves
    them relative to the page: every response is found, and the fonts come through the proxy."""
    flow = ShowBoard(str(tmp_path / "runs"))
    app = LightningApp(flow, cluster=cluster)
    app.start()
    try:
        deadline = time.monotonic() + 180
        while not flow.board.url:
            assert app.stage == "running" and time.monotonic() < deadline, \
                f"TensorBoard did not serve ({app.stage}): {flow.board.status}"
            time.sleep(0.2)
        port = str(flow.board.url.rstrip("/").rsplit(":", 1)[1])
        result = run_e2e("tensorboard.e2e.mjs", {"BOARD_PORT": port}, jupyter_lab)
    finally:
        app.stop()
    assert result["fonts"] and all(font["status"] == 200 for font in result["fonts"]), result["fonts"]
    assert flow.board.has_stopped
