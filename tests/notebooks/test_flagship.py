"""The flagship demo, executed top to bottom in a real kernel (nbclient), twice in a row in one folder, as a
reader runs it: train → TensorBoard → Gradio and REST deployment → retrain with new parameters → redeploy →
the app left running (the form retrains, the pages answer) → its last cell stops it; then the whole notebook
again, in a new kernel, next to the first pass's runs."""

from __future__ import annotations

import ast
import math
import re

import httpx
import pytest
from gallery_support import copy_gallery, kernel_environment, notebook_kernel, poll, text_of, widgets_of

NAME = "train_deploy_diagnose.ipynb"


def is_stop_cell(cell) -> bool:
    return "stop-app" in cell.metadata.get("tags", [])


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def check_a_pass(text: str, first_version: int) -> None:
    """What one pass of the notebook printed, its trainings being version_<first_version> and the next."""
    v1, v2 = f"trainer/version_{first_version}", f"trainer/version_{first_version + 1}"
    # What the works print stays in their logs (and the app view), not in whichever cell runs meanwhile.
    assert "GPU available" not in text
    assert "the trainer's log ends with: ['`Trainer.fit` stopped: `max_epochs=12` reached.']" in text
    # First training deployed to both servers; TensorBoard shows its run (from the drive), next to older ones.
    assert re.search(rf"deployed .*{v1}/checkpoints/.*\.ckpt", text)
    assert f"this training's run: {v1}" in text
    first = float(re.search(r"Gradio:   f\(0\.5\) = ([-+.\d]+)   \(sin", text).group(1))
    assert "REST API: f(-0.5), f(0.5) = [[" in text and "'model_loaded': True" in text
    # Retrained with the new parameters and redeployed on the same servers; TensorBoard has the new run.
    assert "retrained: hidden=48" in text
    assert re.search(rf"deployed .*{v2}/checkpoints/.*\.ckpt", text)
    second = float(re.search(r"Gradio:   f\(0\.5\) = ([-+.\d]+)   \(was", text).group(1))
    assert second != first
    assert abs(second - math.sin(1.5)) < 0.3  # the bigger model learned the curve
    assert f"the new run: {v2}" in text
    runs = ast.literal_eval(re.findall(r"^runs: (\[.*\])$", text, re.M)[-1])
    assert {v1, v2} <= set(runs)


@pytest.mark.timeout(900)
def test_the_flagship_runs_twice_in_one_folder_and_ends_with_a_live_app(tmp_path, monkeypatch):
    kernel_environment(monkeypatch)
    path = copy_gallery(tmp_path, NAME)

    with notebook_kernel(path) as run:
        run.run_until(is_stop_cell)
        text = run.text()
        widgets = [w for cell in run.code for w in widgets_of(cell)]
        assert len(widgets) == 2  # the parameters form and the live app view
        check_a_pass(text, 0)
        assert "runs: ['trainer/version_0', 'trainer/version_1']" in text

        # The notebook ends with the app live: both pages and the REST API answer ...
        assert "the live app: running, 2 models deployed" in text
        gradio = re.search(r"^Gradio +(http://\S+/)$", text, re.M).group(1)
        api = re.search(r"^REST API +(http://\S+/)predict$", text, re.M).group(1)
        tensorboard = re.search(r"^TensorBoard +(http://\S+/)$", text, re.M).group(1)
        assert answers(gradio) and answers(tensorboard) and answers(api + "health")
        # ... and the form still drives it: "Apply" with 3 epochs trains again and redeploys.
        form = widgets_of(next(cell for cell in run.code if "ParamsForm(" in cell.source))[0]
        run.comm_msg(form, {"method": "custom", "content": {"type": "submit", "values": {"epochs": "3"}}})
        health = poll(lambda: (h := httpx.get(api + "health", timeout=10).json())["model_version"] == 3 and h,
                      "the model trained from the form to be deployed", timeout=300, interval=0.5)
        assert "trainer/version_2/checkpoints/epoch=" in health["checkpoint"]

        # The last cell stops it: every work, and with them the servers.
        run.run_rest()
        stopped = text_of(run.cells[-1])
        assert re.search(r"stopped — \{.*'root.gradio': 'stopped'.*'root.trainer': 'succeeded'", stopped), stopped
        assert not answers(gradio) and not answers(tensorboard) and not answers(api + "health")

    # Again, top to bottom, in a new kernel and the same folder: new runs next to the first pass's.
    with notebook_kernel(path) as run:
        run.run_rest()
        text = run.text()
    check_a_pass(text, 3)
    assert "runs: ['trainer/version_0', 'trainer/version_1', 'trainer/version_2', 'trainer/version_3', " \
           "'trainer/version_4']" in text
    assert re.search(r"stopped — \{.*'root.gradio': 'stopped'.*'root.trainer': 'succeeded'", text)
