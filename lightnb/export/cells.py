"""Step 1, reading: the notebook's cells as Python, each IPython escape set aside.

Code cells become :class:`CodeCell` (their source with every escape replaced by a ``pass`` placeholder, so
the cell parses, and the escapes by line); markdown cells become :class:`MarkdownCell`; empty cells and
cells tagged ``skip`` / ``lightnb-skip`` are left out.
"""

from __future__ import annotations

import ast
import io
import re
import shlex
import tokenize
from dataclasses import dataclass
from typing import Any

from .base import PARAMETERS_TAG, SKIP_TAGS, ExportError

# Cell magics whose body is plain Python run once: the body is kept.
TRANSPARENT_CELL_MAGICS = frozenset({"time", "capture"})


@dataclass
class Escape:
    """An IPython escape (``%magic``, ``!cmd``, ``x = !cmd``, ``obj?``) spanning cell lines first..last."""

    first: int
    last: int
    text: str
    indent: str

    @property
    def words(self) -> list[str]:
        try:
            return shlex.split(self.text.lstrip("%!"))
        except ValueError:
            return self.text.lstrip("%!").split()


@dataclass
class CodeCell:
    number: int  # 1-based position in the notebook, markdown cells included (what the user counts)
    original: str
    source: str  # Python: every escape replaced by a `pass` placeholder on its first line
    tree: ast.Module
    escapes: dict[int, Escape]  # by the line of their placeholder
    parameters: bool
    cell_magic: Escape | None = None

    def where(self, line: int | None = None) -> str:
        first = next((text.strip() for text in self.original.splitlines() if text.strip()), "")
        place = f"cell {self.number} (`{first[:40]}`)"
        return place if line is None else f"{place}, line {line}"


@dataclass
class MarkdownCell:
    number: int
    text: str


Cell = CodeCell | MarkdownCell


def parse_cells(notebook: Any, name: str) -> list[Cell]:
    """The notebook's cells to export, in order; :class:`ExportError` for a code cell that is not Python."""
    cells: list[Cell] = []
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        tags = set(cell.get("metadata", {}).get("tags", []) or [])
        if tags & SKIP_TAGS or cell.get("cell_type") not in ("code", "markdown"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if cell["cell_type"] == "markdown":
            if source.strip():
                cells.append(MarkdownCell(number, source))
            continue
        if not source.strip():
            continue
        cells.append(parse_code_cell(number, source, PARAMETERS_TAG in tags, name))
    return cells


def parse_code_cell(number: int, source: str, parameters: bool, name: str) -> CodeCell:
    """One code cell, parsed; ``name`` (the notebook's) is for the error message."""
    python, escapes, cell_magic = replace_escapes(source)
    parsed = CodeCell(number, source, python, ast.Module(body=[], type_ignores=[]), escapes, parameters,
                      cell_magic)
    try:
        parsed.tree = compile(python, f"<cell {number}>", "exec",
                              ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError as error:
        raise ExportError(f"{name}, {parsed.where(error.lineno)}: {error.msg}. Fix the cell, or tag it "
                          "`lightnb-skip` to leave it out of the script") from None
    return parsed


def replace_escapes(source: str) -> tuple[str, dict[int, Escape], Escape | None]:
    """Replace IPython escapes by ``pass`` placeholders (same line count), so the cell parses as Python:
    (the Python, the escapes by line, the cell magic if the cell starts with one).

    An escape counts only where IPython sees one: at the start of a logical line, not inside brackets or a
    string that spans lines.
    """
    lines = source.split("\n")
    first = next(i for i, text in enumerate(lines) if text.strip())
    if lines[first].lstrip().startswith("%%"):
        magic = Escape(first + 1, first + 1, lines[first].strip(), "")
        if magic.words and magic.words[0] in TRANSPARENT_CELL_MAGICS:
            lines[first] = "pass"
            return "\n".join(lines), {first + 1: magic}, magic
        whole = Escape(1, len(lines), source, "")
        return "pass" + "\n" * (len(lines) - 1), {1: whole}, whole
    escapes: dict[int, Escape] = {}
    index = 0
    while index < len(lines):
        text = lines[index]
        if looks_like_escape(text) and statement_boundary(lines[:index]):
            last = index
            while lines[last].rstrip().endswith("\\") and last + 1 < len(lines):
                last += 1
            joined = " ".join(line.rstrip().rstrip("\\").strip() for line in lines[index:last + 1])
            indent = text[: len(text) - len(text.lstrip())]
            escapes[index + 1] = Escape(index + 1, last + 1, joined, indent)
            lines[index] = indent + "pass"
            for blank in range(index + 1, last + 1):
                lines[blank] = ""
            index = last
        index += 1
    return "\n".join(lines), escapes, None


_ESCAPE = re.compile(r"^\s*(?:[%!?]|[\w.]+(?:\s*,\s*[\w.]+)*\s*=\s*[%!]|[\w.\[\]]+\?\??\s*$)")


def looks_like_escape(line: str) -> bool:
    return bool(_ESCAPE.match(line)) and not line.lstrip().startswith("!=")


def statement_boundary(previous: list[str]) -> bool:
    """Whether the lines so far end between statements (not in open brackets, strings or a continuation)."""
    text = "\n".join(previous)
    if not text.strip():
        return True
    if text.rstrip(" \t").endswith("\\"):
        return False
    try:
        for _ in tokenize.generate_tokens(io.StringIO(text + "\n").readline):
            pass
    except tokenize.TokenError:
        return False
    except (IndentationError, SyntaxError):
        return True  # reported when the cell is parsed
    return True
