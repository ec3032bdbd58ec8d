"""notebooks/streamlit_ui.ipynb executed in a real kernel (nbclient): its cell trains once through AppState, as
the page would; then a real headless Chromium drives the Streamlit page itself (labextension/ui-tests/
streamlit-ui.e2e.mjs) — new parameters, the Train button — and the flow trains with them; the last cell stops
the app, and the page with it."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess

import pytest
from gallery_support import REPO, copy_gallery, kernel_environment, notebook_kernel, widgets_of

NAME = "streamlit_ui.ipynb"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def is_stop_cell(cell) -> bool:
    return "stop-app" in cell.metadata.get("tags", [])


@pytest.mark.timeout(900)
def test_the_streamlit_page_drives_the_training(tmp_path, monkeypatch):
    kernel_environment(monkeypatch)
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install -y chromium"
    labextension = REPO / "labextension"
    assert (labextension / "node_modules" / "playwright-core").exists(), "run `npm ci` in labextension/"
    with notebook_kernel(copy_gallery(tmp_path, NAME)) as run:
        run.run_until(is_stop_cell)
        text = run.text()
        url = re.search(r"^Streamlit page 'training': (http://127\.0\.0\.1:\d+/)$", text, re.M).group(1)
        assert len([w for cell in run.code for w in widgets_of(cell)]) == 1  # the live view
        first = ast.literal_eval(re.search(r"^trainings \[training, lr, epochs, val_loss\]: (.*)$", text,
                                           re.M).group(1))
        assert [row[:3] for row in first] == [[1, 0.05, 4]] and 0 < first[0][3] < 1

        # A reader at the page: new parameters, Train.
        done = subprocess.run(["node", "ui-tests/streamlit-ui.e2e.mjs"], cwd=labextension, capture_output=True,
                              text=True, timeout=400, env={**os.environ, "PAGE_URL": url, "CHROMIUM": CHROMIUM,
                                                           "ARTIFACTS": str(REPO / "test-artifacts")})
        lines = [line for line in done.stdout.splitlines() if line.startswith("E2E-RESULT ")]
        assert lines, f"the browser printed no result:\n{done.stdout}\n{done.stderr}"
        result = json.loads(lines[-1].removeprefix("E2E-RESULT "))
        assert result["ok"], f"{result['error']}\nsteps:\n" + "\n".join(result["steps"])

        run.run_rest()
    last = run.text().split("trainings [training, lr, epochs, val_loss]: ")[-1]
    trainings = ast.literal_eval(last.splitlines()[0])
    assert [row[:3] for row in trainings] == [[1, 0.05, 4], [2, 0.1, 3]]
    assert "stopped — {'root.trainer': 'succeeded'}" in last
    assert "the page still answers: False" in last
