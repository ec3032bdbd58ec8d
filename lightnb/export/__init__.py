"""Notebook → app script: what ``lightnb export`` and ``%lightnb export`` write.

The script keeps the notebook's code cells in order, in jupytext's percent format (``# %%`` cell markers, so
editors still see cells) and:

- leaves out cells tagged ``skip`` or ``lightnb-skip``;
- keeps papermill's ``parameters`` cell as the script's parameters (``# %% tags=["parameters"]``), which
  ``lightnb run app.py --param NAME=VALUE`` overrides (see :mod:`lightnb.cli.appfile`);
- drops ``%load_ext lightnb`` and the interactive ``%lightnb`` magics, turns ``%lightnb run APP`` into the
  module-level app, and comments out other magics and shell escapes with a note;
- drops the lines that only show or drive the app (``app``, ``app.view()``, ``app.start()``, ``app.wait()``);
  code that used the *running* app after it started is commented out, since a script defines the app and
  ``lightnb run`` runs it;
- defines ``app = LightningApp(...)`` at module level and never starts it on import: ``lightnb run`` starts
  it, and ``python app.py`` does too through an ``if __name__ == "__main__":`` block.

>>> from lightnb.export import export_notebook
>>> export_notebook("train.ipynb", "app.py").path     # then: lightnb run app.py --cluster tcp://host:8786
PosixPath('app.py')
"""

from __future__ import annotations

import ast
import io
import json
import re
import shlex
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SKIP_TAGS = frozenset({"skip", "lightnb-skip"})
PARAMETERS_TAG = "parameters"
PARAMETERS_MARKER = '# %% tags=["parameters"]'
EXPORT_MARK = "by `lightnb export`"

# Methods of an app that start it, and those that only wait for / stop / show it in a notebook.
_STARTING = frozenset({"start", "run", "step"})
_DRIVING = frozenset({"wait", "wait_async", "stop"}) | _STARTING
# App methods that only return something to show.
_SHOWING = frozenset({"view", "logs", "get_component_by_name"})
# Calls whose only effect is showing something in the notebook (and ``display`` is no builtin in a script).
_DISPLAY_CALLS = frozenset({"display", "AppView", "ParamsForm"})
# Cell magics whose body is plain Python run once: the body is kept.
_TRANSPARENT_CELL_MAGICS = frozenset({"time", "capture"})


class ExportError(ValueError):
    """The notebook cannot become an app script; the message names the notebook, the cell and what to do."""


@dataclass
class _Magic:
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
class _Cell:
    number: int  # 1-based position in the notebook, markdown cells included (what the user counts)
    original: str
    source: str  # Python: every magic replaced by a `pass` placeholder on its first line
    tree: ast.Module
    magics: dict[int, _Magic]
    parameters: bool
    cell_magic: _Magic | None = None

    def where(self, line: int | None = None) -> str:
        first = next((text.strip() for text in self.original.splitlines() if text.strip()), "")
        place = f"cell {self.number} (`{first[:40]}`)"
        return place if line is None else f"{place}, line {line}"


@dataclass
class _Plan:
    """What the export decided while walking the cells in order."""

    app_name: str | None = None
    script: str = "app.py"  # the script's file name, for the notes that say how to run it
    started: bool = False
    tainted: set[str] = field(default_factory=set)  # names that hold (or derive from) the running app
    widgets: set[str] = field(default_factory=set)  # names bound to views and forms (dropped)
    notes: list[str] = field(default_factory=list)


# -- public API ---------------------------------------------------------------------------------------------
def read_notebook(path: str | Path) -> Any:
    """Read ``path`` as an nbformat v4 notebook; :class:`ExportError` names what is wrong with it."""
    import nbformat

    file = Path(path)
    if not file.is_file():
        raise ExportError(f"{file}: no such notebook")
    try:
        return nbformat.reads(file.read_text(encoding="utf-8"), as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as error:
        raise ExportError(f"{file} is not a notebook: it is not valid JSON ({error})") from None
    except Exception as error:
        raise ExportError(f"{file} is not a readable notebook: {type(error).__name__}: {error}") from None


@dataclass
class ExportedScript:
    """An export: the script's source, the name of its app, notes on what was commented out, and where it
    was written (``None`` for an export in memory)."""

    source: str
    app_name: str
    notes: list[str]
    path: Path | None = None


def convert(notebook: Any, *, name: str = "notebook.ipynb", strict: bool = False,
            script_name: str | None = None) -> ExportedScript:
    """The app script of ``notebook`` (an nbformat ``NotebookNode``).

    ``name`` is the notebook's file name, used in the script's header and in error messages; ``script_name``
    the file name the script is written to, for the commands its comments show (default: the notebook's
    name with ``.py``). With
    ``strict=True`` a magic or shell escape that has no script equivalent is an error instead of a comment.
    Raises :class:`ExportError` for a notebook without an app, with several apps, or with a cell that is not
    valid Python.
    """
    language = (notebook.get("metadata", {}).get("kernelspec", {}) or {}).get("language", "python")
    if str(language).lower() != "python":
        raise ExportError(f"{name} is a {language} notebook; lightnb export turns Python notebooks into "
                          "scripts")
    cells = _parse_cells(notebook, name)
    app_name = _find_app(cells, name)
    stem = script_name or Path(name).with_suffix(".py").name
    plan = _Plan(app_name=app_name, script=stem)
    body = [_render_cell(cell, plan, name, strict) for cell in cells]
    header = [
        f"# App script exported from {Path(name).name} {EXPORT_MARK}.",
        f"# Run it with `lightnb run {stem}` (a live view; `--cluster tcp://HOST:8786` or `--cluster "
        "cluster.yaml`",
        f"# runs the same app on another Dask cluster), or with `python {stem}`.",
    ]
    footer = [
        "# %%",
        'if __name__ == "__main__":',
        f"    # `lightnb run {stem}` starts the app itself (it loads this file under another name).",
        f"    {app_name}.run()",
    ]
    parts = ["\n".join(header), *(part for part in body if part), "\n".join(footer)]
    return ExportedScript(_tidy("\n\n\n".join(parts)), app_name, plan.notes)


def notebook_to_script(notebook: Any, *, name: str = "notebook.ipynb", strict: bool = False) -> str:
    """The app script of ``notebook`` as source text (see :func:`convert`)."""
    return convert(notebook, name=name, strict=strict).source


def export_notebook(path: str | Path, output: str | Path | None = None, *, force: bool = False,
                    strict: bool = False) -> ExportedScript:
    """Write the app script of the notebook at ``path`` to ``output`` (default: beside it, ``.py``).

    An existing file not written by ``lightnb export`` is kept unless ``force=True``. This is what
    ``lightnb export`` and ``%lightnb export`` call; errors are :class:`ExportError`.

    >>> export_notebook("train.ipynb").path
    PosixPath('train.py')
    """
    notebook_path = Path(path)
    target = Path(output) if output is not None else notebook_path.with_suffix(".py")
    if target.resolve() == notebook_path.resolve():
        raise ExportError(f"the output {target} is the notebook itself; give a .py path with -o")
    script = convert(read_notebook(notebook_path), name=notebook_path.name, strict=strict,
                     script_name=target.name)
    if target.exists() and not force and not is_exported_script(target):
        raise ExportError(f"{target} exists and was not written by lightnb export; it is kept. Choose "
                          "another output with -o, or overwrite it with --force")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(script.source, encoding="utf-8")
    script.path = target
    return script


def is_exported_script(path: str | Path) -> bool:
    """Whether ``path`` starts like a script ``lightnb export`` wrote."""
    try:
        with open(path, encoding="utf-8") as file:
            return EXPORT_MARK in file.readline()
    except (OSError, UnicodeDecodeError):
        return False


# -- reading cells ------------------------------------------------------------------------------------------
def _parse_cells(notebook: Any, name: str) -> list[Any]:
    """Code cells become :class:`_Cell`; markdown cells stay as they are (they become comments)."""
    cells: list[Any] = []
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        tags = set(cell.get("metadata", {}).get("tags", []) or [])
        if tags & SKIP_TAGS or cell.get("cell_type") not in ("code", "markdown"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if cell["cell_type"] == "markdown":
            if source.strip():
                cells.append(source)
            continue
        if not source.strip():
            continue
        python, magics, cell_magic = _replace_magics(source)
        parsed = _Cell(number, source, python, ast.Module(body=[], type_ignores=[]), magics,
                       PARAMETERS_TAG in tags, cell_magic)
        try:
            parsed.tree = compile(python, f"<cell {number}>", "exec",
                                  ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except SyntaxError as error:
            raise ExportError(f"{name}, {parsed.where(error.lineno)}: {error.msg}. Fix the cell, or tag it "
                              "`lightnb-skip` to leave it out of the script") from None
        cells.append(parsed)
    return cells


def _replace_magics(source: str) -> tuple[str, dict[int, _Magic], _Magic | None]:
    """Replace IPython escapes by ``pass`` placeholders (same line count), so the cell parses as Python.

    An escape counts only where IPython sees one: at the start of a logical line, not inside brackets or a
    string that spans lines.
    """
    lines = source.split("\n")
    first = next(i for i, text in enumerate(lines) if text.strip())
    if lines[first].lstrip().startswith("%%"):
        magic = _Magic(first + 1, first + 1, lines[first].strip(), "")
        if magic.words and magic.words[0] in _TRANSPARENT_CELL_MAGICS:
            lines[first] = "pass"
            return "\n".join(lines), {first + 1: magic}, magic
        whole = _Magic(1, len(lines), source, "")
        return "pass" + "\n" * (len(lines) - 1), {1: whole}, whole
    magics: dict[int, _Magic] = {}
    index = 0
    while index < len(lines):
        text = lines[index]
        if _looks_like_escape(text) and _statement_boundary(lines[:index]):
            last = index
            while lines[last].rstrip().endswith("\\") and last + 1 < len(lines):
                last += 1
            joined = " ".join(line.rstrip().rstrip("\\").strip() for line in lines[index:last + 1])
            indent = text[: len(text) - len(text.lstrip())]
            magics[index + 1] = _Magic(index + 1, last + 1, joined, indent)
            lines[index] = indent + "pass"
            for blank in range(index + 1, last + 1):
                lines[blank] = ""
            index = last
        index += 1
    return "\n".join(lines), magics, None


_ESCAPE = re.compile(r"^\s*(?:[%!?]|[\w.]+(?:\s*,\s*[\w.]+)*\s*=\s*[%!]|[\w.\[\]]+\?\??\s*$)")


def _looks_like_escape(line: str) -> bool:
    return bool(_ESCAPE.match(line)) and not line.lstrip().startswith("!=")


def _statement_boundary(previous: list[str]) -> bool:
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


# -- finding the app ----------------------------------------------------------------------------------------
def _is_app_class(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "LightningApp") or \
        (isinstance(node, ast.Attribute) and node.attr == "LightningApp")


def _construction(statement: ast.stmt) -> tuple[str, ast.Call, bool] | None:
    """``NAME = LightningApp(...)`` (or ``LightningApp(...).start()`` / ``.run()``): (name, the
    constructor call, whether it was started right away)."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target, value = statement.targets[0], statement.value
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        target, value = statement.target, statement.value
    elif isinstance(statement, ast.Expr):
        target, value = ast.Name("app"), statement.value
    else:
        return None
    if not isinstance(target, ast.Name) or not isinstance(value, ast.Call):
        return None
    if _is_app_class(value.func) and not isinstance(statement, ast.Expr):
        return target.id, value, False
    func = value.func
    if isinstance(func, ast.Attribute) and func.attr in ("start", "run") and \
            isinstance(func.value, ast.Call) and _is_app_class(func.value.func):
        return target.id, func.value, True
    return None


def _run_magic_target(magic: _Magic) -> str | None:
    """The APP of ``%lightnb run APP [...]``."""
    words = magic.words
    if len(words) >= 3 and words[0] == "lightnb" and words[1] == "run" and magic.text.startswith("%"):
        return words[2]
    return None


def _find_app(cells: list[Any], name: str) -> str:
    """The name of the notebook's one app; :class:`ExportError` if it has none or several."""
    made: list[tuple[str, str]] = []  # (variable, where)
    known: set[str] = set()
    for cell in cells:
        if not isinstance(cell, _Cell):
            continue
        for statement in cell.tree.body:
            found = _construction(statement)
            if found is not None:
                made.append((found[0], cell.where(statement.lineno)))
                known.add(found[0])
            magic = cell.magics.get(statement.lineno) if isinstance(statement, ast.Pass) else None
            target = _run_magic_target(magic) if magic is not None else None
            if target is not None and target not in known:
                made.append(("app", cell.where(statement.lineno)))
                known.add("app")
    if not made:
        raise ExportError(f"{name} creates no LightningApp at the top level of a cell, so there is no app to "
                          "export. Add a cell such as `app = LightningApp(Root())`")
    if len(made) > 1:
        listed = "; ".join(f"{variable} in {where}" for variable, where in made)
        raise ExportError(f"{name} creates {len(made)} apps ({listed}); an app script runs one. Tag the "
                          "cells of the others `lightnb-skip`")
    return made[0][0]


# -- writing cells ------------------------------------------------------------------------------------------
def _render_cell(cell: Any, plan: _Plan, name: str, strict: bool) -> str:
    if isinstance(cell, str):
        return "# %% [markdown]\n" + "\n".join(f"# {line}".rstrip() for line in cell.strip().split("\n"))
    lines = cell.source.split("\n")
    for magic in cell.magics.values():
        if magic.indent:  # an escape inside a block: its placeholder `pass` keeps the block valid
            note = _escape_note(magic, cell, plan, name, strict)
            lines[magic.first - 1] = f"{magic.indent}pass  # {magic.text.splitlines()[0]}  ({note})"
    out: list[str] = []
    position = 0  # the next cell line (0-based) not yet written
    noted = wrote = False
    statements = cell.tree.body
    for index, statement in enumerate(statements):
        first = min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", [])]) - 1
        last = statement.end_lineno or statement.lineno
        fate, replacement = _fate(statement, cell, plan, name, strict)
        out.extend(lines[position:first])
        followed = index + 1 < len(statements) and statements[index + 1].lineno == last
        shares_line = first < position or followed
        # `a; b` on one line: each statement goes on a line of its own.
        own = (ast.get_source_segment(cell.source, statement) or "").split("\n") if shares_line \
            else lines[first:last]
        position = max(position, last)
        if fate == "drop":
            continue
        wrote = True
        if fate == "comment":
            if not noted:
                out.append("# lightnb export: left out, as it used the running app or its widgets in the "
                           "notebook\n# (the script defines the app; `lightnb run` runs it).")
                noted = True
            out.extend(f"# {line}".rstrip() for line in own)
        else:
            out.extend(replacement if fate == "replace" else own)
    out.extend(lines[position:])
    text = "\n".join(out).strip("\n")
    if not wrote and statements:
        return ""  # everything it did was showing or driving the app
    if cell.parameters:
        return (f"{PARAMETERS_MARKER}\n# The script's parameters: `lightnb run {plan.script} --param "
                f"NAME=VALUE` overrides them.\n{text}")
    return f"# %%\n{text}"


def _fate(statement: ast.stmt, cell: _Cell, plan: _Plan, name: str, strict: bool) -> tuple[str, list[str]]:
    """keep / drop / comment / replace (with the replacement lines) for one top-level statement."""
    if isinstance(statement, ast.Pass) and statement.lineno in cell.magics:
        return _magic_fate(cell.magics[statement.lineno], cell, plan, name, strict)
    app = plan.app_name
    found = _construction(statement)
    if found is not None and found[0] == app:
        plan.tainted.add(app)
        if found[2]:
            plan.started = True
            return "replace", [f"{app} = {ast.get_source_segment(cell.source, found[1])}"]
        return "keep", []
    driving = _driving_calls(statement, app)
    if driving:
        plan.started = plan.started or bool(driving & _STARTING)
        if _driving_call(statement, app):
            return "drop", []
        plan.tainted |= _assigns(statement)
        return "comment", []  # e.g. `try: app.wait() ...`: it drove the notebook's app
    if _display_only(statement, app) or _shows_widget(statement, plan.widgets):
        return "drop", []
    widget = _widget_assignment(statement, app)
    if widget:
        plan.widgets |= widget
        return "drop", []
    if _reads(statement) & plan.widgets:
        plan.widgets |= _assigns(statement)  # what is derived from a widget is gone with it
        return "comment", []
    if plan.started and _reads(statement) & plan.tainted:
        plan.tainted |= _assigns(statement)
        return "comment", []
    if _top_level_await(statement):
        raise ExportError(f"{name}, {cell.where(statement.lineno)}: top-level `await` cannot run in a "
                          "script. Move it into an async function run with asyncio.run(), or tag the cell "
                          "`lightnb-skip`")
    return "keep", []


def _magic_fate(magic: _Magic, cell: _Cell, plan: _Plan, name: str, strict: bool) -> tuple[str, list[str]]:
    words = magic.words
    text = magic.text.split("\n")
    if magic is cell.cell_magic and words and words[0] in _TRANSPARENT_CELL_MAGICS:
        return "replace", [f"# {text[0]}  (lightnb export: the cell's code runs as is)"]
    if magic.text.startswith("%") and not magic.text.startswith("%%") and words:
        if words[0] in ("load_ext", "reload_ext") and words[1:] == ["lightnb"]:
            return "drop", []
        if words[0] == "lightnb":
            return _lightnb_magic(magic, plan)
    note = _escape_note(magic, cell, plan, name, strict)
    if len(text) == 1:
        return "replace", [f"# {text[0]}  ({note})"]
    return "replace", [f"# {note}:"] + [f"# {line}".rstrip() for line in text]


def _escape_note(magic: _Magic, cell: _Cell, plan: _Plan, name: str, strict: bool) -> str:
    """``lightnb export: what the escape is, why it is not run``; an error with ``strict``."""
    first = magic.text.split("\n")[0]
    words = magic.words
    if words and (words[0] == "lightnb" or words[:2] in (["load_ext", "lightnb"], ["reload_ext", "lightnb"])):
        return "lightnb export: not needed in a script"
    if strict:
        raise ExportError(f"{name}, {cell.where(magic.first)}: `{first}` has no equivalent in a script "
                          "(export without --strict to comment it out)")
    plan.notes.append(f"{cell.where(magic.first)}: `{first}` is commented out")
    return f"lightnb export: {_describe_escape(magic.text)}"


def _describe_escape(text: str) -> str:
    if text.startswith("%%"):
        what = "cell magic"
    elif text.startswith("!") or re.match(r"^[\w.,\s]+=\s*!", text):
        what = "shell command"
    elif text.rstrip().endswith("?") or text.startswith("?"):
        what = "help request"
    else:
        what = "IPython magic"
    if "pip install" in text or "conda install" in text:
        return f"{what}, not run in a script; install the packages where it runs"
    return f"{what}, not run in a script"


def _lightnb_magic(magic: _Magic, plan: _Plan) -> tuple[str, list[str]]:
    words = magic.words
    command = words[1] if len(words) > 1 else ""
    if command == "run" and len(words) > 2:
        target, rest = words[2], " ".join(words[3:])
        plan.started = True
        note = [f"# lightnb export: `{rest}` is given at run time: lightnb run {plan.script} {rest}"] \
            if rest else []
        if target == plan.app_name and target in plan.tainted:
            return ("replace", note) if note else ("drop", [])
        plan.tainted.add(plan.app_name or "app")
        try:
            expression = ast.parse(target, mode="eval").body
        except SyntaxError:
            expression = None
        if isinstance(expression, ast.Call) and _is_app_class(expression.func):
            return "replace", [*note, f"app = {target}"]
        return "replace", [
            *note,
            f"import lightnb  # lightnb export: `%lightnb run {target}` is the app `lightnb run` starts",
            f"app = {target} if isinstance({target}, lightnb.LightningApp) else "
            f"lightnb.LightningApp({target})",
        ]
    if command == "cluster" and len(words) > 2:
        spec = " ".join(words[2:])
        return "replace", [f"# {magic.text}  (lightnb export: give it at run time: --cluster {spec})"]
    return "drop", []  # view, status, stop, step, logs, export: interactive only


def _driving_call(statement: ast.stmt, app: str | None) -> str | None:
    """``app.start()``, ``app.wait(...)``, ``await app.wait_async()`` as a statement: the method name."""
    if not isinstance(statement, ast.Expr):
        return None
    value = statement.value.value if isinstance(statement.value, ast.Await) else statement.value
    return _app_method(value, app, _DRIVING)


def _driving_calls(statement: ast.stmt, app: str | None) -> set[str]:
    """The app methods that start, wait for or stop the app called anywhere in ``statement`` (not in a
    function or class it defines)."""
    found: set[str] = set()
    pending: list[ast.AST] = [statement]
    while pending:
        node = pending.pop()
        method = _app_method(node, app, _DRIVING)
        if method:
            found.add(method)
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                pending.append(child)
    return found


def _app_method(node: ast.AST, app: str | None, methods: frozenset[str]) -> str | None:
    """``app.<method>(...)`` with ``method`` in ``methods``: its name."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods \
            and isinstance(node.func.value, ast.Name) and node.func.value.id == app:
        return node.func.attr
    return None


def _display_only(statement: ast.stmt, app: str | None) -> bool:
    """A bare expression that only shows something: the app or a part of it, ``app.view()``, a widget."""
    if not isinstance(statement, ast.Expr):
        return False
    value = statement.value
    if isinstance(value, ast.Call):
        func = value.func
        callee = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return callee in _DISPLAY_CALLS or _app_method(value, app, _SHOWING) is not None
    return isinstance(value, (ast.Name, ast.Attribute, ast.Subscript)) and _root_name(value) == app


def _widget_assignment(statement: ast.stmt, app: str | None) -> set[str]:
    """``form = ParamsForm(...)`` / ``view = app.view()``: the names bound to a widget (else empty)."""
    if not isinstance(statement, (ast.Assign, ast.AnnAssign)) or statement.value is None:
        return set()
    if not _display_only(ast.Expr(statement.value), app) or not isinstance(statement.value, ast.Call):
        return set()
    return _assigns(statement)


def _shows_widget(statement: ast.stmt, widgets: set[str]) -> bool:
    """A bare expression showing a widget bound earlier (``form``, ``display(form)``)."""
    if not isinstance(statement, ast.Expr) or not widgets:
        return False
    value = statement.value
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "display":
        return True
    return _root_name(value) in widgets


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _reads(statement: ast.stmt) -> set[str]:
    return {node.id for node in ast.walk(statement) if isinstance(node, ast.Name) and
            isinstance(node.ctx, ast.Load)} | _augmented(statement)


def _augmented(statement: ast.stmt) -> set[str]:
    if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
        return {statement.target.id}
    return set()


def _assigns(statement: ast.stmt) -> set[str]:
    names = {node.id for node in ast.walk(statement) if isinstance(node, ast.Name) and
             isinstance(node.ctx, ast.Store)}
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(statement.name)
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        names |= {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    return names


def _top_level_await(node: ast.AST) -> bool:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(child, (ast.Await, ast.AsyncFor, ast.AsyncWith)) or _top_level_await(child):
            return True
    return False


def _tidy(text: str) -> str:
    return re.sub(r"\n{4,}", "\n\n\n", text).strip("\n") + "\n"
