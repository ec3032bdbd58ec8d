"""Durable apps for real: a process running a named app is killed (SIGKILL) mid-training, a new one resumes it.

The killed process is a real `lightnb run` (its embedded cluster dies with it) or a real kernel (its works run
on a `dask scheduler` + `dask worker` cluster that outlives it). Every work writes a line to a file of the
test's own when its run() starts: what ran, and how often, is read there, not from lightnb's own records.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kernel_session import KernelSession
from script_apps import env as script_env

from lightnb.storage.record import AppRecord

STEPS = 40

APP = f'''\
import os
import time
from pathlib import Path

from lightnb import LightningApp, LightningFlow, LightningWork

MARKS = Path(os.environ["MARKS"])


class Prepare(LightningWork):
    def __init__(self):
        super().__init__()
        self.rows = 0

    def run(self):
        with open(MARKS / "prepare", "a") as marks:
            marks.write("started\\n")
        self.rows = 100


class Train(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.step = 0
        self.progress = 0.0

    def run(self, steps):
        with open(MARKS / "train", "a") as marks:
            marks.write(f"{{self.step}}\\n")  # where it starts from
        while self.step < steps:
            time.sleep(float(os.environ.get("STEP_SECONDS", "0.1")))
            self.step += 1
            self.progress = self.step / steps


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.prepare = Prepare()
        self.train = Train()

    def run(self):
        self.prepare.run()
        self.train.run(steps={STEPS})
        if self.train.has_succeeded:
            self.stop(f"trained {{self.train.step}} steps")


app = LightningApp(Root(), name="exp1", storage=os.environ["STORAGE"], cluster=os.environ.get("CLUSTER") or None,
                   resume=bool(os.environ.get("RESUME")))
'''


def recorded_step(storage: Path) -> int:
    record = AppRecord(str(storage), "exp1")
    if not record.exists():
        return -1
    return record.read().components.get("root.train", {}).get("vars", {}).get("step", -1)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.1)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "marks").mkdir()
    (tmp_path / "app.py").write_text(APP)
    return {"work": tmp_path, "marks": tmp_path / "marks", "storage": tmp_path / "storage"}


def test_lightnb_run_resume_after_sigkill_reruns_the_interrupted_call_from_its_last_state(folders) -> None:
    variables = {**script_env(), "MARKS": str(folders["marks"]), "STORAGE": str(folders["storage"])}
    first = subprocess.Popen([sys.executable, "-m", "lightnb", "run", "app.py"], cwd=folders["work"],
                             env=variables, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        wait_for(lambda: recorded_step(folders["storage"]) >= 10, 240, "training to step 10")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the process and its embedded cluster, at once
        first.wait(30)
    killed_at = recorded_step(folders["storage"])
    resumed = subprocess.run([sys.executable, "-m", "lightnb", "run", "app.py", "--resume", "--state-json",
                              "state.json"], cwd=folders["work"], env=variables, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"lightnb: exp1 stopped: trained {STEPS} steps" in resumed.stdout
    assert "running again (their calls were interrupted): root.train" in resumed.stdout
    # Prepare succeeded before the kill: not run again. Train was interrupted: it ran again, from the step
    # the record had, not from 0.
    assert lines(folders["marks"] / "prepare") == ["started"]
    starts = [int(step) for step in lines(folders["marks"] / "train")]
    assert starts[0] == 0 and len(starts) == 2 and starts[1] == killed_at >= 10
    assert AppRecord(str(folders["storage"]), "exp1").read().stage == "stopped"


def test_a_killed_kernels_work_keeps_running_on_its_cluster_and_a_new_kernel_reattaches(folders, remote) -> None:
    variables = {"MARKS": str(folders["marks"]), "STORAGE": str(folders["storage"]), "CLUSTER": remote.address,
                 "STEP_SECONDS": "0.25"}
    code = f"import os\nos.environ.update({variables!r})\n" + APP
    with KernelSession() as kernel:
        assert kernel.execute(code + "app.start()").ok
        wait_for(lambda: recorded_step(folders["storage"]) >= 5, 120, "training to step 5")
        os.kill(kernel.pid, signal.SIGKILL)
    killed_at = recorded_step(folders["storage"])
    with KernelSession() as kernel:  # the work went on meanwhile, with nobody listening
        started = kernel.execute(code.replace('bool(os.environ.get("RESUME"))', "True") + "app.start()")
        assert started.ok, started.text
        assert kernel.value("[work for work, _ in app.resumed.reattach]") == ["root.train"]
        assert kernel.value("app.resumed.rerun") == []
        # The app's live view says it is a resumed app, and what resuming did.
        header = kernel.value("__import__('lightnb.ui.model').ui.model.app_header(app)")
        assert "re-attached to root.train" in header["resumed"]
        waited = kernel.execute("app.wait(120)")
        assert waited.ok, waited.text
        state = kernel.value("app.state")
    # run() started exactly once, on the cluster; the resumed app saw it to its end.
    assert lines(folders["marks"] / "train") == ["0"] and lines(folders["marks"] / "prepare") == ["started"]
    train = state["works"]["train"]
    assert killed_at < STEPS and train["vars"]["step"] == STEPS and train["vars"]["progress"] == 1.0
    assert train["calls"][train["calls"]["latest_call_hash"]]["stage"] == "succeeded"


KILLED_APP = '''\
import os
import time

import lightnb.storage.record as records
from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.structures import List

records.FLUSH_INTERVAL = 0.01  # write as often as possible: the kill lands in the middle of writes
records.COMPACT_EVERY = 5


class Chatty(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.counter = 0
        self.history = []

    def run(self):
        while True:
            self.counter += 1
            self.history = self.history[-20:] + [self.counter]
            time.sleep(0.02)


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.works = List(*(Chatty() for _ in range(20)))

    def run(self):
        for work in self.works:
            work.run()


if __name__ == "__main__":
    LightningApp(Root(), name="chatty", storage=os.environ["STORAGE"]).run()
'''


def test_a_record_killed_at_random_moments_of_heavy_writing_stays_readable(tmp_path: Path) -> None:
    (tmp_path / "chatty.py").write_text(KILLED_APP)
    storage = tmp_path / "storage"
    variables = {**script_env(), "STORAGE": str(storage)}
    randomly = random.Random(7)
    for attempt in range(4):
        process = subprocess.Popen([sys.executable, "chatty.py"], cwd=tmp_path, env=variables,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        record = AppRecord(str(storage), "chatty")
        try:
            wait_for(lambda record=record: record.exists() and "root.works.19" in record.read().components,
                     120, f"the record of attempt {attempt}")
            time.sleep(randomly.uniform(0.2, 2.0))  # then kill it anywhere in what it is doing
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        recorded = record.read()  # never torn: whatever moment the kill landed on
        assert len([name for name in recorded.components if name.startswith("root.works.")]) == 20


def test_the_durable_apps_notebook_shows_a_crash_and_the_resume(tmp_path, monkeypatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    repo = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(repo / "notebooks" / "durable_apps.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs if output.output_type == "stream")
    killed = int(re.search(r"killed at step (\d+)", text).group(1))
    assert killed >= 15
    assert re.search(r"exp1\s+running\s+\S+ \S+\s+root.train", text)  # lightnb apps: the record of a dead app
    assert "trained 60 steps" in text and "prepare ran 1 time(s)" in text
    started_from = [int(step) for step in re.search(r"train started from steps \[(.*)\]", text).group(1).split(",")]
    assert started_from[0] == 0 and started_from[1] == killed


def test_resume_without_a_record_starts_fresh_and_says_so_and_a_new_start_replaces_the_record(cluster, tmp_path):
    from lightnb import LightningApp, LightningFlow

    class Counts(LightningFlow):
        def __init__(self):
            super().__init__()
            self.passes = 0

        def run(self):
            self.passes += 1
            if self.passes >= 3:
                self.stop("counted")

    storage = str(tmp_path / "storage")
    first = LightningApp(Counts(), cluster=cluster, storage=storage, name="fresh", resume=True).start()
    first.wait(60)
    assert "lightnb: no record of fresh in " in "\n".join(first.logs("root")) and first.resumed is None
    assert AppRecord(storage, "fresh").read().components["root"]["vars"]["passes"] == 3

    # Not resuming: the app starts over, and its record with it.
    again = LightningApp(Counts(), cluster=cluster, storage=storage, name="fresh")
    again.root.passes = -10
    again.start().wait(60)
    replaced = AppRecord(storage, "fresh").read()
    assert replaced.components["root"]["vars"]["passes"] == 3  # counted from -10: it did not resume
    assert replaced.meta["app_id"] == again.app_id != first.app_id
    with pytest.raises(ValueError, match="resume=True needs the name"):
        LightningApp(Counts(), resume=True)
