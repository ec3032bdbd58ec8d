"""The Lightning Pod demo, executed top to bottom in a real kernel (nbclient): a sweep with pruning, the best
checkpoint served by ModelServer, a load test against it, the report, and a clean stop."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "lightning_pod.ipynb"


def test_the_lightning_pod_notebook_runs_end_to_end_in_a_real_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored clean
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    text = "\n".join(o.get("text", "") for cell in code for o in cell.outputs if o.output_type == "stream")
    views = [o for cell in code for o in cell.outputs
             if o.output_type in ("display_data", "execute_result")
             and "application/vnd.jupyter.widget-view+json" in o["data"]]
    assert len(views) == 1  # the live view

    # Eight trials: the pruner stopped some while they trained, the others completed; none failed.
    rows = re.findall(r"^\s+(\d+)\s+([\d.]+)\s+(\d+)\s+(complete|pruned|failed|running)\s+([\d.]*)$", text, re.M)
    assert [int(row[0]) for row in rows] == list(range(8)), text
    states = [row[3] for row in rows]
    assert "pruned" in states and "complete" in states and "failed" not in states, text
    best = float(re.search(r"best: trial (\d+), val_loss ([\d.]+)", text).group(2))
    assert best == min(float(row[4]) for row in rows if row[3] == "complete")
    assert best < 0.1, text
    trial = re.search(r"best: trial (\d+)", text).group(1)
    assert f"study: {trial} is the best trial in the journal" in text

    # The best checkpoint is served, and answers close to sin(1.5).
    assert re.search(rf"served: .*trial_works\.{trial}/version_0/checkpoints/.*\.ckpt", text), text
    prediction = float(re.search(r"f\(0\.5\) = ([-+.\d]+)", text).group(1))
    assert abs(prediction - 0.997) < 0.35, text

    # The load test ran against it without failures.
    load = re.search(r"load test: (\d+) requests, (\d+) failures, (\d+) requests/s", text)
    assert int(load.group(1)) > 0 and int(load.group(2)) == 0 and int(load.group(3)) > 0, text

    # Stopped cleanly: the server and the load test are stopped with the app.
    assert re.search(r"stopped — \{'root.load': '(succeeded|stopped)', 'root.server': 'stopped'\}", text), text

    # The live view, as the notebook keeps it (its widget state): the sweep as its table of trials, the load
    # test as its figures.
    states = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    appview = next(s["state"] for s in states.values() if "components" in s["state"])
    sweep = appview["components"]["root.sweep"]["view"]
    assert sweep["kind"] == "sweep" and len(sweep["state"]["trials"]) == 8
    assert sweep["state"]["best_trial"] == int(trial)
    load_view = appview["components"]["root.load"]["view"]
    assert load_view["kind"] == "loadtest" and load_view["state"]["requests"] == int(load.group(1))
    assert load_view["state"]["p50_ms"] <= load_view["state"]["p99_ms"]
