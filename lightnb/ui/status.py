"""``%lightnb status``: every app of the kernel as a table (component, stage, progress, url), for a cell's
output — HTML in a notebook, aligned text elsewhere."""

from __future__ import annotations

import html
import io
from typing import Any

from ..app import LightningApp
from .model import app_locked, components_of, describe

ICONS = {"not_started": "○", "pending": "◔", "running": "●", "succeeded": "✔", "failed": "✖", "stopped": "■"}
COLUMNS = ("app", "component", "stage", "progress", "url")


def status_rows(apps: list[tuple[str, LightningApp]]) -> list[dict[str, str]]:
    """One row per app (its stage) and per component of it."""
    rows: list[dict[str, str]] = []
    for label, app in apps:
        rows.append({"app": label, "component": f"({app.app_id})", "stage": _stage(str(app.stage)),
                     "progress": "", "url": ""})
        with app_locked(app):
            components = [describe(app, node) for node in components_of(app.root)]
        for component in components:
            depth = component["name"].count(".")
            stage = _stage(component["stage"]) if component["kind"] == "work" else "flow"
            rows.append({"app": "", "component": "  " * depth + component["name"], "stage": stage,
                         "progress": _progress(component["progress"]), "url": component["url"] or ""})
    return rows


def _stage(stage: str) -> str:
    return f"{ICONS.get(stage, '?')} {stage}"


def _progress(value: float | None) -> str:
    if value is None:
        return ""
    filled = round(value * 10)
    return f"{'█' * filled}{'░' * (10 - filled)} {value * 100:3.0f}%"


class StatusTable:
    """Displays as an HTML table in a notebook and as aligned text elsewhere."""

    def __init__(self, rows: list[dict[str, str]]) -> None:
        self.rows = rows

    def __repr__(self) -> str:
        if not self.rows:
            return "no apps in this kernel"
        from rich.console import Console
        from rich.table import Table

        table = Table(*COLUMNS, box=None, pad_edge=False, show_edge=False)
        for row in self.rows:
            table.add_row(*(row[column] for column in COLUMNS))
        buffer = io.StringIO()
        Console(file=buffer, width=160, color_system=None, force_terminal=False, force_jupyter=False).print(table)
        return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())

    def _repr_html_(self) -> str:
        if not self.rows:
            return "<p>no apps in this kernel</p>"
        head = "".join(f"<th style='text-align:left'>{column}</th>" for column in COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left;white-space:pre'>{_cell(column, row[column])}</td>"
                             for column in COLUMNS) + "</tr>"
            for row in self.rows)
        return f"<table class='lightnb-status'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(column: str, value: str) -> str:
    if column == "url" and value:
        escaped = html.escape(value)
        return f"<a href='{escaped}' target='_blank'>{escaped}</a>"
    return html.escape(value)


def as_table(apps: list[tuple[str, Any]]) -> StatusTable:
    return StatusTable(status_rows(apps))
