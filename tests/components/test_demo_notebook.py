"""The flagship demo, executed top to bottom in a real kernel (nbclient), as CI and Binder users run it:
train → TensorBoard → Gradio and REST deployment → retrain with new parameters → redeploy → stop."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "train_deploy_diagnose.ipynb"


def outputs_of(cell) -> tuple[str, list[dict]]:
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    data = [o["data"] for o in cell.outputs if o.output_type in ("display_data", "execute_result")]
    return text, data


def test_the_demo_notebook_runs_end_to_end_in_a_real_kernel(tmp_path, monkeypatch):
    # The kernel imports this checkout's lightnb, and writes its runs and storage in a folder of its own.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    text = "\n".join(outputs_of(cell)[0] for cell in code)
    widgets = [d for cell in code for d in outputs_of(cell)[1] if "application/vnd.jupyter.widget-view+json" in d]
    assert len(widgets) == 2  # the parameters form and the live app view
    # What the works print stays in their logs (and the app view), not in whichever cell runs meanwhile.
    assert "GPU available" not in text
    assert "the trainer's log ends with: ['`Trainer.fit` stopped: `max_epochs=12` reached.']" in text

    # First training deployed to both servers; TensorBoard shows its run (from the drive).
    assert re.search(r"deployed .*trainer/version_0/checkpoints/.*\.ckpt", text)
    assert "runs: ['trainer/version_0']" in text
    first = float(re.search(r"Gradio:   f\(0\.5\) = ([-+.\d]+)   \(sin", text).group(1))
    assert "REST API: f(-0.5), f(0.5) = [[" in text and "'model_loaded': True" in text

    # Retrained with the new parameters and redeployed on the same servers; TensorBoard has both runs.
    assert "retrained: hidden=48" in text
    assert re.search(r"deployed .*trainer/version_1/checkpoints/.*\.ckpt", text)
    second = float(re.search(r"Gradio:   f\(0\.5\) = ([-+.\d]+)   \(was", text).group(1))
    assert second != first
    assert abs(second - math.sin(1.5)) < 0.3  # the bigger model learned the curve
    assert "runs: ['trainer/version_0', 'trainer/version_1']" in text

    # Stopped cleanly: every work stopped with the app.
    assert re.search(r"stopped — \{.*'root.trainer': 'succeeded'.*'root.gradio': 'stopped'", text)
