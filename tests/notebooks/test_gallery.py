"""The gallery in notebooks/: each notebook executed top to bottom in a real kernel (nbclient), its works on
real Dask clusters, checked for what its reader sees; and every notebook stored as a reader should get it."""

from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import psutil
import pytest
from gallery_support import NOTEBOOKS, copy_gallery, kernel_environment, notebook_kernel, text_of, widgets_of

GALLERY = ["quickstart.ipynb", "existing_scripts.ipynb", "train_deploy_diagnose.ipynb", "scale_out.ipynb",
           "debugging.ipynb"]


def test_the_gallery_is_all_there_and_each_notebook_says_first_what_it_shows():
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert set(GALLERY) <= set(names)
    for name in names:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        first = notebook.cells[0]
        assert first.cell_type == "markdown", name
        title, *rest = first.source.split("\n\n")
        assert title.startswith("# ") and rest and len(rest[0]) > 80, f"{name}: a title, then what it shows"
        assert notebook.metadata["kernelspec"]["name"] == "python3", name


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_stored_without_outputs(path: Path):
    """What nbstripout leaves: no outputs, no execution counts, nothing a run records in the metadata."""
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        where = f"{path.name} cell {index}"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{where} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{where} has an execution count"
        per_run = set(cell.metadata) & {"execution", "ExecuteTime", "collapsed", "scrolled"}
        assert not per_run, f"{where} keeps what a run left in its metadata: {sorted(per_run)}"
    assert not set(notebook.metadata) & {"widgets", "signature"}, f"{path.name} stores widget state or a signature"


def test_quickstart(tmp_path, monkeypatch):
    kernel_environment(monkeypatch)
    with notebook_kernel(copy_gallery(tmp_path, "quickstart.ipynb")) as run:
        run.run_rest()
    text = run.text()
    # The live view and the form were shown.
    assert len([w for cell in run.code for w in widgets_of(cell)]) == 2
    # The first training, with its output in the work's log (not in the cell that ran meanwhile) ...
    first = re.search(r"results \(lr, steps, loss\): \[\[0\.05, 40, ([\d.]+)\]\]\n", text)
    assert first and 0 < float(first.group(1)) < 0.2, text
    assert "the work printed: ['training with lr=0.05 for 40 steps', 'done: loss" in text
    assert text.count("training with lr") == 1
    # ... then the new parameters trained again, and the app stopped.
    second = re.search(r"\[\[0\.05, 40, [\d.]+\], \[0\.2, 20, ([\d.]+)\]\]", text)
    assert second and float(second.group(1)) < float(first.group(1))
    assert "stopped — {'root.train': 'succeeded'}" in text


def test_debugging(tmp_path, monkeypatch):
    kernel_environment(monkeypatch)
    with notebook_kernel(copy_gallery(tmp_path, "debugging.ipynb")) as run:
        run.run_rest()
    text = run.text()
    assert "running — passes so far: 0" in text  # started paused: no pass until stepped
    assert re.search(r"after one pass: 1 pass — load (pending|running)\n", text)  # dispatched by that pass
    passes = [int(n) for n in re.findall(r"^pass (\d+): load", text, re.M)]
    assert passes == sorted(passes)
    assert re.search(r"load succeeded, parse (pending|running|failed), rows \['1.5', '2.5', 'three', '4.5'\]", text)
    # The failing work's traceback, from the worker, names the line that failed.
    traceback = text_of(next(c for c in run.code if c.source.startswith("print(app.root.parse.status.message)")))
    assert traceback.startswith("Traceback (most recent call last):")
    assert "self.total = sum(float(row) for row in rows)" in traceback
    assert traceback.rstrip().endswith("ValueError: could not convert string to float: 'three'")
    # The flow handled it and stopped the app; the notebook went on.
    assert "the flow recorded: ValueError: could not convert string to float: 'three'" in text
    assert "app: stopped — stopped after handling the failure" in text
    assert "root.load: ['loaded 4 rows']" in text and "root.parse: ['parsing 4 rows']" in text
    # raise_exception=True: the app failed, and wait() raised AppFailed naming the work.
    assert "AppFailed from root.parse; it ends with:" in text and "app: failed" in text
    assert not any(o.output_type == "error" for c in run.code for o in c.outputs)


def test_existing_scripts(tmp_path, monkeypatch):
    kernel_environment(monkeypatch)
    with notebook_kernel(copy_gallery(tmp_path, "existing_scripts.ipynb")) as run:
        run.run_rest()
    text = run.text()
    assert "usage: train.py [-h] [--lr LR]" in text  # a plain argparse script
    loss = re.search(r"train.py exited with 0; its final_loss: ([\d.]+)", text)  # a global of the script
    assert loss and float(loss.group(1)) < 0.05
    assert "its last lines: ['epoch 30/30: loss" in text
    assert "TensorBoard runs: ['lr_0.03']" in text  # the script's SummaryWriter logs, served by `tensorboard`
    guess = float(re.search(r"Gradio: f\(0\.5\) = ([-+.\d]+)", text).group(1))
    assert abs(guess - math.sin(1.5)) < 0.3  # serve.py serves the model train.py saved
    assert "serve.py printed: ['serving model.pt on http://127.0.0.1:" in text
    assert "TensorBoard runs: ['lr_0.03', 'lr_0.1']" in text  # new arguments ran the script again
    assert ("stopped — {'root.gradio': 'stopped', 'root.tensorboard': 'stopped', 'root.train': 'succeeded'}"
            in text)
    assert "TensorBoard still answers: False — Gradio still answers: False" in text  # the processes ended
    assert (tmp_path / "scripts-output" / "model.pt").is_file()


def test_scale_out(tmp_path, monkeypatch):
    kernel_environment(monkeypatch)
    with notebook_kernel(copy_gallery(tmp_path, "scale_out.ipynb")) as run:
        run.run_rest()
    text = run.text()
    address = re.search(r"scheduler at (tcp://127\.0\.0\.1:\d+); workers: \['notebook-worker'\]", text).group(1)
    worker = re.search(r"the worker's process id: (\d+)", text).group(1)
    assert f"apps created without a cluster now use {address}" in text
    # From the notebook, both works ran in the worker process the notebook started.
    assert f"the works ran in processes {{{worker}}} (the worker started above: {worker})" in text
    # Exported: the app at module level, the cells tagged skip left out.
    script = (tmp_path / "app_export.py").read_text()
    assert "app = LightningApp(Sweep(steps))" in script and "subprocess" not in script
    assert "steps = 30" in script
    # `lightnb run --cluster` ran it on the same worker, with the parameter given, and exited 0.
    assert "lightnb run exited with 0" in text
    assert (f"from its final state: steps=10, losses 0.8171 and 0.3487, in processes {{{worker}}} "
            f"(the worker started above: {worker})") in text
    assert "worker exited with 0 — scheduler exited with 0" in text
    # Nothing of the cluster is left running.
    assert not psutil.pid_exists(int(worker))
