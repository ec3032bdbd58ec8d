"""Small apps and notebooks for the script-front tests (``lightnb export`` / ``lightnb run``)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent

# A work that counts (reporting the process it ran in and an environment variable), a flow that stops the
# app when it is done. Plain definitions: the same text is a notebook cell and part of app scripts.
COUNTER_DEFINITIONS = '''\
import os
import time

from lightnb import LightningApp, LightningFlow, LightningWork


class Counter(LightningWork):
    def __init__(self):
        super().__init__()
        self.count = 0
        self.pid = 0
        self.greeting = ""

    def run(self, steps):
        self.pid = os.getpid()
        self.greeting = os.environ.get("LIGHTNB_TEST_GREETING", "")
        for _ in range(steps):
            self.count += 1
            print(f"counted {self.count}", flush=True)


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.counter = Counter()
        self.total = 0
        self.label = label

    def run(self):
        self.counter.run(steps)
        if self.counter.has_succeeded:
            self.total = self.counter.count
            self.stop(f"counted to {self.total}")
'''

PIDS_APP = '''\
import os

from lightnb import LightningApp, LightningFlow, LightningWork


class Pid(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.pid = 0

    def run(self):
        self.pid = os.getpid()


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.a = Pid()
        self.b = Pid()

    def run(self):
        self.a.run()
        self.b.run()
        if self.a.has_succeeded and self.b.has_succeeded:
            self.stop("both reported")


app = LightningApp(Root())
'''

FAILING_APP = '''\
from lightnb import LightningApp, LightningFlow, LightningWork


def check(value):
    raise ValueError(f"bad value {value}")


class Broken(LightningWork):
    def run(self):
        check(42)


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.broken = Broken()

    def run(self):
        self.broken.run()


app = LightningApp(Root())
'''

# Runs until stopped: for Ctrl-C. It says where it runs once it does.
FOREVER_APP = '''\
import os
import time

from lightnb import LightningApp, LightningFlow, LightningWork


class Forever(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.ticks = 0
        self.progress = 0.0

    def run(self):
        print(f"working in {os.getpid()}", flush=True)
        while True:
            self.ticks += 1
            self.progress = (self.ticks % 10) / 10
            time.sleep(0.2)


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.forever = Forever()

    def run(self):
        self.forever.run()


app = LightningApp(Root())
'''


def counter_notebook(*, steps: int = 3, label: str = "notebook", extra_cells: list[Any] = ()) -> Any:
    """The counter app as a notebook: runnable in a kernel (no lightnb magics: they belong to the notebook
    front), ending with a cell that prints the final app state."""
    return new_notebook(
        cells=[
            new_markdown_cell("# Counter\nCounts, then stops the app."),
            new_code_cell(f"steps = {steps}\nlabel = {label!r}", metadata={"tags": ["parameters"]}),
            new_code_cell(COUNTER_DEFINITIONS),
            new_code_cell("print('only while exploring')", metadata={"tags": ["lightnb-skip"]}),
            new_code_cell("app = LightningApp(Root())\napp"),
            new_code_cell("app.start()\napp.view"),
            new_code_cell("app.wait(240)\napp.state['vars']"),
            *extra_cells,
            new_code_cell("import json\nprint('STATE=' + json.dumps(app.state))\n"
                          "final_total = app.root.total"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )


def write_notebook(notebook: Any, path: Path) -> Path:
    nbformat.write(notebook, str(path))
    return path


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """An app state without what differs from run to run (times, process ids)."""
    state = copy.deepcopy(state)

    def clean(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("timestamp", "pid"):
                node.pop(key, None)
            for value in node.values():
                clean(value)

    clean(state)
    return state


def env() -> dict[str, str]:
    """The environment of a `lightnb` subprocess: this worktree's lightnb first, no forced colours."""
    variables = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE")}
    variables["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    variables["PYTHONUNBUFFERED"] = "1"
    return variables


def lightnb(*args: str, cwd: Path, timeout: float = 240, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the real command line (`python -m lightnb ...`) to its end, through pipes."""
    return subprocess.run([sys.executable, "-m", "lightnb", *map(str, args)], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout, **kwargs)
