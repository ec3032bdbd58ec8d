"""Running one of labextension/ui-tests' browser scripts against a JupyterLab of the ``jupyter_lab`` fixture."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "labextension"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def write_notebook(path: Path, *sources: str) -> str:
    """A notebook of code cells at ``path`` (its name returned)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path.name


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
