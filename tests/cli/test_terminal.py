"""The terminal view of `lightnb run`: what it shows of an app, and plain lines when not on a terminal.

Fast tests on the in-process executor; tests/test_cli.py runs the real command on Dask clusters.
"""

from __future__ import annotations

import io
import time

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


# -- metrics as sparklines ---------------------------------------------------------------------------------
def test_a_sparkline_scales_the_last_values_from_lowest_to_highest_block() -> None:
    from lightnb.cli.terminal import sparkline

    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([10, 0]) == "█▁"
    assert sparkline([3.0, 3.0, 3.0]) == "▄▄▄"  # no change: a flat line, not a crash
    assert sparkline([]) == ""
    assert sparkline(range(100), width=5) == "▁▃▅▆█"  # the last five of them, scaled among themselves


def test_metric_history_adds_a_point_per_new_set_of_values() -> None:
    from lightnb.cli.terminal import MetricHistory

    history = MetricHistory(points=4)
    for loss in (4.0, 4.0, 3.0, 2.0, 1.0, 0.5):  # the same set seen twice is one point
        history.observe([Row("root.w", "work", "running", None, "", (("loss", loss), ("acc", 1 / (1 + loss))))])
    lines = {line.metric: line for line in history.lines("root.w")}
    assert lines["loss"].spark == "█▅▂▁" and lines["loss"].last == 0.5  # the last four points
    assert lines["acc"].spark[-1] == "█"
    assert lines["loss"].text() == "loss █▅▂▁ 0.5"
    assert history.lines("root") == []


def test_metrics_attribute_keeps_finite_numbers_only() -> None:
    state = {"vars": {"metrics": {"loss": 0.5, "name": "x", "nan": float("nan"), "flag": True, "n": 3}},
             "flows": {}, "works": {}}
    assert component_rows(state)[0].metrics == (("loss", 0.5), ("n", 3.0))


class Learn(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.metrics: dict = {}

    def run(self):
        for step in range(1, 9):
            self.metrics = {"loss": 1 / step}
            time.sleep(0.05)


class LearnRoot(LightningFlow):
    def __init__(self):
        super().__init__()
        self.learn = Learn()

    def run(self):
        self.learn.run()
        if self.learn.has_succeeded:
            self.stop("learnt")


def test_without_a_terminal_a_works_metrics_end_as_a_sparkline_line() -> None:
    out = io.StringIO()
    app = LightningApp(LearnRoot(), cluster="in-process")
    view = TerminalView(app, Console(file=out, force_terminal=False, no_color=True, soft_wrap=True))
    app.subscribe(view.on_changes)
    app.start()
    with view:
        while not view.wait_until_ended(0.25):
            pass
    lines = [line for line in out.getvalue().splitlines() if line.startswith("root.learn metrics: loss ")]
    assert len(lines) == 1, out.getvalue()
    spark, last = lines[0].removeprefix("root.learn metrics: loss ").split(" ")
    assert float(last) == 0.125 and spark[-1] == "▁" and len(spark) >= 2 and set(spark) <= set("▁▂▃▄▅▆▇█")
