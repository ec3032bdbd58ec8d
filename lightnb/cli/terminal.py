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

import threading
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Row:
    """One component of the app as the view shows it."""

    name: str
    kind: str  # "flow" or "work"
    stage: str  # a work's stage; "" for a flow
    progress: float | None  # an attribute named `progress` in [0, 1]
    detail: str  # a work's url, or the first line of why it failed or stopped


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
    yield Row(name, kind, stage, progress, detail)
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
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
        else:
            self._print_changes()

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

    def _print_changes(self) -> None:
        """Without a terminal: one plain line per stage change."""
        cluster = self._cluster_description()
        if cluster and cluster != self._cluster:
            self._cluster = cluster
            self.console.print(f"lightnb: on {cluster}", highlight=False)
        for row in component_rows(self.app.state):
            if row.kind == "work" and self._stages.get(row.name) != row.stage:
                self._stages[row.name] = row.stage
                detail = f" ({row.detail})" if row.detail else ""
                self.console.print(f"{row.name}: {row.stage}{detail}", highlight=False, markup=False)

    def _cluster_description(self) -> str:
        executor = getattr(self.app.loop, "executor", None)
        description = str(getattr(executor, "description", "") or "")
        return "" if description == "not connected" else description

    def _render(self) -> Any:
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
        for row in component_rows(self.app.state):
            bar = Text.assemble(*_bar_text(row.progress)) if row.progress is not None else ""
            table.add_row(row.name, Text(row.stage or "flow", style=STAGE_STYLES.get(row.stage, "dim")), bar,
                          Text(row.detail, style="dim"))
        return Group(header, table)


def _bar_text(progress: float, width: int = 20) -> list[tuple[str, str]]:
    done = round(progress * width)
    return [("━" * done, "cyan"), ("━" * (width - done), "grey23"), (f" {progress:4.0%}", "")]
