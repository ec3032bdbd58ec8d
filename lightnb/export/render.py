"""Step 4, rendering: the classified cells as the script's text, in jupytext's percent format."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .base import EXPORT_MARK, PARAMETERS_MARKER
from .cells import MarkdownCell
from .fates import ClassifiedCell, Fate

COMMENTED_NOTE = ("# lightnb export: left out, as it used the running app or its widgets in the notebook\n"
                  "# (the script defines the app; `lightnb run` runs it).")


def render_script(cells: list[ClassifiedCell | MarkdownCell], *, notebook: str, script: str, app_name: str) -> str:
    """The whole script: a header saying how to run it, the cells, the ``__main__`` guard that runs the app."""
    body = [render_markdown(cell) if isinstance(cell, MarkdownCell) else render_code(cell, script)
            for cell in cells]
    header = [
        f"# App script exported from {Path(notebook).name} {EXPORT_MARK}.",
        f"# Run it with `lightnb run {script}` (a live view; `--cluster tcp://HOST:8786` or `--cluster "
        "cluster.yaml`",
        f"# runs the same app on another Dask cluster), or with `python {script}`.",
    ]
    footer = [
        "# %%",
        'if __name__ == "__main__":',
        f"    # `lightnb run {script}` starts the app itself (it loads this file under another name).",
        f"    {app_name}.run()",
    ]
    parts = ["\n".join(header), *(part for part in body if part), "\n".join(footer)]
    return tidy("\n\n\n".join(parts))


def render_markdown(cell: MarkdownCell) -> str:
    return "# %% [markdown]\n" + "\n".join(f"# {line}".rstrip() for line in cell.text.strip().split("\n"))


def render_code(classified: ClassifiedCell, script: str) -> str:
    """A code cell as its decisions say; ``""`` when nothing of it is left (it only showed or drove the
    app)."""
    cell = classified.cell
    lines = cell.source.split("\n")
    for escape, note in classified.block_escapes:
        lines[escape.first - 1] = f"{escape.indent}pass  # {escape.text.splitlines()[0]}  ({note})"
    out: list[str] = []
    position = 0  # the next cell line (0-based) not yet written
    noted = wrote = False
    statements = cell.tree.body
    for index, (statement, decision) in enumerate(zip(statements, classified.decisions, strict=True)):
        first = min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", [])]) - 1
        last = statement.end_lineno or statement.lineno
        out.extend(lines[position:first])
        followed = index + 1 < len(statements) and statements[index + 1].lineno == last
        shares_line = first < position or followed
        # `a; b` on one line: each statement goes on a line of its own.
        own = (ast.get_source_segment(cell.source, statement) or "").split("\n") if shares_line \
            else lines[first:last]
        position = max(position, last)
        if decision.fate is Fate.DROP:
            continue
        wrote = True
        if decision.fate is Fate.COMMENT:
            if not noted:
                out.append(COMMENTED_NOTE)
                noted = True
            out.extend(f"# {line}".rstrip() for line in own)
        else:
            out.extend(decision.lines if decision.fate is Fate.REPLACE else own)
    out.extend(lines[position:])
    text = "\n".join(out).strip("\n")
    if not wrote and statements:
        return ""  # everything it did was showing or driving the app
    if cell.parameters:
        return (f"{PARAMETERS_MARKER}\n# The script's parameters: `lightnb run {script} --param "
                f"NAME=VALUE` overrides them.\n{text}")
    return f"# %%\n{text}"


def tidy(text: str) -> str:
    return re.sub(r"\n{4,}", "\n\n\n", text).strip("\n") + "\n"
