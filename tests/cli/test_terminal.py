"""The terminal view of `lightnb run`: what it shows of an app, and plain lines when not on a terminal.

Fast tests on the in-process executor; tests/test_cli.py runs the real command on Dask clusters.
"""

from __future__ import annotations

import io

from rich.console import Console

from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.cli.terminal import Row, TerminalView, component_rows
from lightnb.structures import List


class Step(LightningWork):
    def __init__(self, fail: bool = False):
        super().__init__(parallel=True, raise_exception=False)
        self.progress = 0.0
        self.fail = fail

    def run(self):
        print("starting [bold]not markup[/bold]")
        self.progress = 0.5
        if self.fail:
            raise RuntimeError("step broke")
        self.progress = 1.0


class Child(LightningFlow):
    def __init__(self):
        super().__init__()
        self.url = "http://127.0.0.1:1234/"

    def run(self):
        pass


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.child = Child()
        self.steps = List(Step(), Step(fail=True))

    def run(self):
        for step in self.steps:
            step.run()
        if all(step.status.stage in ("succeeded", "failed") for step in self.steps):
            self.stop("all steps ended")


def run_in_process() -> LightningApp:
    app = LightningApp(Root(), cluster="in-process")
    app.start()
    app.wait(60)
    return app


def test_rows_show_every_component_with_stage_progress_and_detail() -> None:
    rows = component_rows(run_in_process().state)
    assert [row.name for row in rows] == ["root", "root.child", "root.steps.0", "root.steps.1"]
    assert rows[0] == Row("root", "flow", "", None, "")
    assert rows[1].detail == "http://127.0.0.1:1234/"
    assert rows[2] == Row("root.steps.0", "work", "succeeded", 1.0, "")
    assert (rows[3].stage, rows[3].progress) == ("failed", 0.5)
    assert rows[3].detail == "RuntimeError: step broke"


def test_progress_outside_zero_to_one_is_not_a_bar() -> None:
    state = {"vars": {"progress": 7}, "flows": {}, "works": {"w": {"vars": {"progress": True}, "calls": {}}}}
    assert [row.progress for row in component_rows(state)] == [None, None]
    assert component_rows(state)[1].stage == "not_started"


def test_without_a_terminal_the_view_writes_plain_lines() -> None:
    out = io.StringIO()
    app = LightningApp(Root(), cluster="in-process")
    console = Console(file=out, force_terminal=False, no_color=True, soft_wrap=True)
    view = TerminalView(app, console, "steps.py")
    app.start()
    app.subscribe(view.on_changes)
    with view:
        while not view.wait_until_ended(0.25):
            pass
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "lightnb: running Root from steps.py"
    assert "root.steps.0: succeeded" in lines
    assert "root.steps.1: failed (RuntimeError: step broke)" in lines
    # Log lines as the components printed them (no markup interpretation), each once.
    assert lines.count("root.steps.0 | starting [bold]not markup[/bold]") == 1
    assert lines.count("root.steps.1 | starting [bold]not markup[/bold]") == 1
