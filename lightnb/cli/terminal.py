"""The live terminal view of ``lightnb run``: components, their stage and progress, and logs as they come.

On a terminal it is a ``rich`` live table redrawn a few times a second, with the components' log lines
printed above it. When the output is not a terminal (a pipe, a file, a scheduler's log) it writes plain
lines only — stage changes and log lines, no control codes — so the log reads well afterwards.

>>> view = TerminalView(app, Console())
>>> app.subscribe(view.on_changes); app.start()
>>> with view:
...     while not view.wait_until_ended(0.25):
...         pass
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..app import LightningApp
from ..runtime.loop import Changes

STAGE_STYLES = {
    "not_started": "dim", "pending": "yellow", "running": "cyan", "succeeded": "green", "failed": "bold red",
    "stopped": "magenta",
}
REFRESH_PER_SECOND = 4
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_POINTS = 30  # the last values of each metric a sparkline shows
MAX_METRICS = 6  # metrics shown per component


@dataclass(frozen=True)
class Row:
    """One component of the app as the view shows it."""

    name: str
    kind: str  # "flow" or "work"
    stage: str  # a work's stage; "" for a flow
    progress: float | None  # an attribute named `progress` in [0, 1]
    detail: str  # a work's url, or the first line of why it failed or stopped
    metrics: tuple[tuple[str, float], ...] = ()  # its `metrics` attribute's finite numbers, in order


def sparkline(values: Sequence[float], width: int = SPARK_POINTS) -> str:
    """The last ``width`` values as a line of blocks ``▁▂▃▄▅▆▇█``, lowest to highest (all equal: ``▄``)."""
    shown = list(values)[-width:] if width > 0 else []
    if not shown:
        return ""
    low, high = min(shown), max(shown)
    if high == low:
        return SPARK_BLOCKS[3] * len(shown)
    top = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[round((value - low) / (high - low) * top)] for value in shown)


def metric_values(value: Any) -> tuple[tuple[str, float], ...]:
    """A ``metrics`` attribute's finite numbers (at most ``MAX_METRICS``); ``()`` if it is no dict."""
    if not isinstance(value, dict):
        return ()
    numbers = [(str(key), float(number)) for key, number in value.items()
               if isinstance(number, Real) and not isinstance(number, bool) and math.isfinite(float(number))]
    return tuple(numbers[:MAX_METRICS])


@dataclass(frozen=True)
class MetricLine:
    """One metric of one component as the view shows it: its sparkline and latest value."""

    component: str
    metric: str
    spark: str
    last: float

    def text(self) -> str:
        return f"{self.metric} {self.spark} {self.last:.4g}"


class MetricHistory:
    """The last values each component's metrics took, as the view saw them (a new set of values is one
    more point; the same set seen again is none)."""

    def __init__(self, points: int = SPARK_POINTS) -> None:
        self.points = points
        self._last: dict[str, tuple[tuple[str, float], ...]] = {}
        self._series: dict[str, dict[str, deque[float]]] = {}

    def observe(self, rows: Sequence[Row]) -> None:
        for row in rows:
            if not row.metrics or self._last.get(row.name) == row.metrics:
                continue
            self._last[row.name] = row.metrics
            series = self._series.setdefault(row.name, {})
            for metric, value in row.metrics:
                series.setdefault(metric, deque(maxlen=self.points)).append(value)

    def lines(self, component: str) -> list[MetricLine]:
        return [MetricLine(component, metric, sparkline(values, self.points), values[-1])
                for metric, values in self._series.get(component, {}).items() if values]


def component_rows(state: dict[str, Any], name: str = "root") -> list[Row]:
    """The rows of every component in ``state`` (an ``app.state``), depth first, flows before their works."""
    return list(_rows(state, name, "flow"))


def _rows(state: dict[str, Any], name: str, kind: str) -> Iterator[Row]:
    variables = state.get("vars", {})
    progress = variables.get("progress")
    if not isinstance(progress, (int, float)) or isinstance(progress, bool) or not 0 <= progress <= 1:
        progress = None
    stage, detail = "", str(variables.get("url") or "")
    if kind == "work":
        calls = state.get("calls", {})
        latest = calls.get(calls.get("latest_call_hash") or "", {})
        stage = latest.get("stage", "not_started")
        if stage in ("failed", "stopped") and latest.get("message"):
            detail = str(latest["message"]).strip().splitlines()[-1]
    yield Row(name, kind, stage, progress, detail, metric_values(variables.get("metrics")))
    for key, child in state.get("flows", {}).items():
        yield from _rows(child, f"{name}.{key}", "flow")
    for key, child in state.get("works", {}).items():
        yield from _rows(child, f"{name}.{key}", "work")
    for key, structure in state.get("structures", {}).items():
        for index, child in structure.get("flows", {}).items():
            yield from _rows(child, f"{name}.{key}.{index}", "flow")
        for index, child in structure.get("works", {}).items():
            yield from _rows(child, f"{name}.{key}.{index}", "work")


class TerminalView:
    """Follows one app: subscribe :meth:`on_changes` to it, enter the view, call :meth:`wait_until_ended`."""

    def __init__(self, app: LightningApp, console: Console, source: str = "") -> None:
        self.app = app
        self.console = console
        self.source = source
        self.live = console.is_terminal
        self._changed = threading.Event()
        self._lock = threading.Lock()
        self._log_names: set[str] = set()
        self._log_counts: dict[str, int] = {}
        self._stages: dict[str, str] = {}
        self._history = MetricHistory()
        self._printed_metrics: set[str] = set()
        self._cluster = ""
        self._live: Live | None = None
        self.stopping = ""
        self._said_stopping = False

    # -- the app's side (its loop thread): note what changed, nothing more --------------------------------
    def on_changes(self, changes: Changes) -> None:
        with self._lock:
            self._log_names |= changes.logs
        self._changed.set()

    # -- the main thread ----------------------------------------------------------------------------------
    def __enter__(self) -> TerminalView:
        if self.live:
            self._live = Live(self._render(), console=self.console, refresh_per_second=REFRESH_PER_SECOND,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.__enter__()
        else:
            self.console.print(f"lightnb: running {self.app.name}{self._from()}", highlight=False)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.update(final=True)
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def wait_until_ended(self, timeout: float) -> bool:
        """Wait for a change (at most ``timeout`` seconds), show it; ``True`` once the app has ended."""
        self._changed.wait(timeout)
        self._changed.clear()
        self.update()
        return self.app.ended

    def set_stopping(self, message: str) -> None:
        """Show that the app is stopping (safe from a signal handler: the next update shows it)."""
        self.stopping = message
        self._changed.set()

    def update(self, final: bool = False) -> None:
        if self.stopping and not self._said_stopping and not self.live:
            self._said_stopping = True
            self.console.print(f"lightnb: {self.stopping}", highlight=False)
        self._print_logs(final)
        rows = component_rows(self.app.state)
        self._history.observe(rows)
        if self._live is not None:
            self._live.update(self._render(rows), refresh=True)
        else:
            self._print_changes(rows, final)

    # -- pieces -------------------------------------------------------------------------------------------
    def _from(self) -> str:
        return f" from {self.source}" if self.source else ""

    def _print_logs(self, final: bool) -> None:
        loop = self.app.loop
        if loop is None:
            return
        with self._lock:
            names, self._log_names = self._log_names, set()
        if final:
            names |= set(loop.logs)
        for name in sorted(names):
            buffer = loop.logs.get(name)
            if buffer is None:
                continue
            lines, self._log_counts[name] = buffer.since(self._log_counts.get(name, 0), partial=final)
            for line in lines:
                prefix = Text(f"{name} | ", style="dim")
                self.console.print(prefix + Text(line), soft_wrap=True, highlight=False, markup=False)

    def _print_changes(self, rows: list[Row], final: bool) -> None:
        """Without a terminal: one plain line per stage change; a work's metrics as sparklines once it
        ended (or the app did)."""
        cluster = self._cluster_description()
        if cluster and cluster != self._cluster:
            self._cluster = cluster
            self.console.print(f"lightnb: on {cluster}", highlight=False)
        for row in rows:
            if row.kind == "work" and self._stages.get(row.name) != row.stage:
                self._stages[row.name] = row.stage
                detail = f" ({row.detail})" if row.detail else ""
                self.console.print(f"{row.name}: {row.stage}{detail}", highlight=False, markup=False)
            ended = row.stage in ("succeeded", "failed", "stopped") or (final and row.kind == "work")
            if ended and row.name not in self._printed_metrics and self._history.lines(row.name):
                self._printed_metrics.add(row.name)
                for line in self._history.lines(row.name):
                    self.console.print(f"{row.name} metrics: {line.text()}", highlight=False, markup=False)

    def _cluster_description(self) -> str:
        executor = getattr(self.app.loop, "executor", None)
        description = str(getattr(executor, "description", "") or "")
        return "" if description == "not connected" else description

    def _render(self, rows: list[Row] | None = None) -> Any:
        stage = "stopping" if self.stopping and not self.app.ended else str(self.app.stage)
        header = Text.assemble(("lightnb ", "bold"), (self.app.name, "bold cyan"), f"{self._from()} · ",
                               (stage, STAGE_STYLES.get(stage, "bold")))
        cluster = self._cluster_description()
        if cluster:
            header.append(f" · {cluster}", style="dim")
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        table.add_column("component")
        table.add_column("stage")
        table.add_column("progress")
        table.add_column("")
        rows = component_rows(self.app.state) if rows is None else rows
        metrics = {row.name: "\n".join(line.text() for line in self._history.lines(row.name)) for row in rows}
        if any(metrics.values()):
            table.add_column("metrics")
        for row in rows:
            bar = Text.assemble(*_bar_text(row.progress)) if row.progress is not None else ""
            cells = [row.name, Text(row.stage or "flow", style=STAGE_STYLES.get(row.stage, "dim")), bar,
                     Text(row.detail, style="dim")]
            if any(metrics.values()):
                cells.append(Text(metrics[row.name], style="green"))
            table.add_row(*cells)
        return Group(header, table)


def _bar_text(progress: float, width: int = 20) -> list[tuple[str, str]]:
    done = round(progress * width)
    return [("━" * done, "cyan"), ("━" * (width - done), "grey23"), (f" {progress:4.0%}", "")]
