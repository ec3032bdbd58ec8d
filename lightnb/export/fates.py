"""Step 3, classifying: the fate of each top-level statement and each IPython escape of the cells.

A script defines the app and ``lightnb run`` runs it, so what only showed or drove the app in the notebook
is dropped, code that used the *running* app is commented out, escapes become comments (or, for
``%lightnb run APP``, the module-level app), and the rest is kept. The cells are classified in order: what
an earlier cell did (started the app, bound a widget) decides the fate of later statements, in
:class:`Plan`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from enum import Enum

from .base import ExportError
from .cells import TRANSPARENT_CELL_MAGICS, Cell, CodeCell, Escape, MarkdownCell
from .find import construction, is_app_class

# Methods of an app that start it, and those that only wait for / stop / show it in a notebook.
STARTING = frozenset({"start", "run", "step"})
DRIVING = frozenset({"wait", "wait_async", "stop"}) | STARTING
# App methods that only return something to show.
SHOWING = frozenset({"view", "logs", "get_component_by_name"})
# Calls whose only effect is showing something in the notebook (and ``display`` is no builtin in a script).
DISPLAY_CALLS = frozenset({"display", "AppView", "ParamsForm"})


class Fate(Enum):
    """What becomes of a statement or an escape in the script."""

    KEEP = "keep"  # written as it is
    DROP = "drop"  # left out without a trace
    COMMENT = "comment"  # written commented out, under a note saying why
    REPLACE = "replace"  # written as other lines (Decision.lines)


@dataclass(frozen=True)
class Decision:
    fate: Fate
    lines: tuple[str, ...] = ()  # the replacement, for Fate.REPLACE

    @classmethod
    def replace(cls, *lines: str) -> Decision:
        return cls(Fate.REPLACE, lines)


KEEP, DROP, COMMENT = Decision(Fate.KEEP), Decision(Fate.DROP), Decision(Fate.COMMENT)


@dataclass
class Plan:
    """What the export learned while classifying the cells in order."""

    app_name: str | None = None
    script: str = "app.py"  # the script's file name, for the notes that say how to run it
    started: bool = False
    tainted: set[str] = field(default_factory=set)  # names that hold (or derive from) the running app
    widgets: set[str] = field(default_factory=set)  # names bound to views and forms (dropped)
    notes: list[str] = field(default_factory=list)


@dataclass
class ClassifiedCell:
    """A code cell and its decisions: one per top-level statement, and a note for each escape inside a
    block (its ``pass`` placeholder stays, to keep the block valid)."""

    cell: CodeCell
    decisions: list[Decision]
    block_escapes: list[tuple[Escape, str]] = field(default_factory=list)


def classify_cells(cells: list[Cell], plan: Plan, name: str, strict: bool) -> list[ClassifiedCell | MarkdownCell]:
    """Every cell classified, in order (markdown cells as they are)."""
    return [cell if isinstance(cell, MarkdownCell) else classify_cell(cell, plan, name, strict)
            for cell in cells]


def classify_cell(cell: CodeCell, plan: Plan, name: str, strict: bool) -> ClassifiedCell:
    block_escapes = [(escape, escape_note(escape, cell, plan, name, strict))
                     for escape in cell.escapes.values() if escape.indent]
    decisions = [classify_statement(statement, cell, plan, name, strict) for statement in cell.tree.body]
    return ClassifiedCell(cell, decisions, block_escapes)


def classify_statement(statement: ast.stmt, cell: CodeCell, plan: Plan, name: str, strict: bool) -> Decision:
    """The fate of one top-level statement of ``cell``."""
    if isinstance(statement, ast.Pass) and statement.lineno in cell.escapes:
        return classify_escape(cell.escapes[statement.lineno], cell, plan, name, strict)
    app = plan.app_name
    found = construction(statement)
    if found is not None and found[0] == app:
        plan.tainted.add(app)
        if found[2]:
            plan.started = True
            return Decision.replace(f"{app} = {ast.get_source_segment(cell.source, found[1])}")
        return KEEP
    driving = driving_calls(statement, app)
    if driving:
        plan.started = plan.started or bool(driving & STARTING)
        if driving_call(statement, app):
            return DROP
        plan.tainted |= assigns(statement)
        return COMMENT  # e.g. `try: app.wait() ...`: it drove the notebook's app
    if display_only(statement, app) or shows_widget(statement, plan.widgets):
        return DROP
    widget = widget_assignment(statement, app)
    if widget:
        plan.widgets |= widget
        return DROP
    if reads(statement) & plan.widgets:
        plan.widgets |= assigns(statement)  # what is derived from a widget is gone with it
        return COMMENT
    if plan.started and reads(statement) & plan.tainted:
        plan.tainted |= assigns(statement)
        return COMMENT
    if top_level_await(statement):
        raise ExportError(f"{name}, {cell.where(statement.lineno)}: top-level `await` cannot run in a "
                          "script. Move it into an async function run with asyncio.run(), or tag the cell "
                          "`lightnb-skip`")
    return KEEP


def classify_escape(escape: Escape, cell: CodeCell, plan: Plan, name: str, strict: bool) -> Decision:
    """The fate of an escape standing as a top-level statement."""
    words = escape.words
    text = escape.text.split("\n")
    if escape is cell.cell_magic and words and words[0] in TRANSPARENT_CELL_MAGICS:
        return Decision.replace(f"# {text[0]}  (lightnb export: the cell's code runs as is)")
    if escape.text.startswith("%") and not escape.text.startswith("%%") and words:
        if words[0] in ("load_ext", "reload_ext") and words[1:] == ["lightnb"]:
            return DROP
        if words[0] == "lightnb":
            return classify_lightnb_magic(escape, plan)
    note = escape_note(escape, cell, plan, name, strict)
    if len(text) == 1:
        return Decision.replace(f"# {text[0]}  ({note})")
    return Decision.replace(f"# {note}:", *(f"# {line}".rstrip() for line in text))


def escape_note(escape: Escape, cell: CodeCell, plan: Plan, name: str, strict: bool) -> str:
    """``lightnb export: what the escape is, why it is not run``; an error with ``strict``."""
    first = escape.text.split("\n")[0]
    words = escape.words
    if words and (words[0] == "lightnb" or words[:2] in (["load_ext", "lightnb"], ["reload_ext", "lightnb"])):
        return "lightnb export: not needed in a script"
    if strict:
        raise ExportError(f"{name}, {cell.where(escape.first)}: `{first}` has no equivalent in a script "
                          "(export without --strict to comment it out)")
    plan.notes.append(f"{cell.where(escape.first)}: `{first}` is commented out")
    return f"lightnb export: {describe_escape(escape.text)}"


def describe_escape(text: str) -> str:
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


def classify_lightnb_magic(escape: Escape, plan: Plan) -> Decision:
    """``%lightnb ...``: ``run APP`` becomes the module-level app, ``cluster SPEC`` a note for run time, the
    interactive rest is dropped."""
    words = escape.words
    command = words[1] if len(words) > 1 else ""
    if command == "run" and len(words) > 2:
        target, rest = words[2], " ".join(words[3:])
        plan.started = True
        note = [f"# lightnb export: `{rest}` is given at run time: lightnb run {plan.script} {rest}"] \
            if rest else []
        if target == plan.app_name and target in plan.tainted:
            return Decision.replace(*note) if note else DROP
        plan.tainted.add(plan.app_name or "app")
        try:
            expression = ast.parse(target, mode="eval").body
        except SyntaxError:
            expression = None
        if isinstance(expression, ast.Call) and is_app_class(expression.func):
            return Decision.replace(*note, f"app = {target}")
        return Decision.replace(
            *note,
            f"import lightnb  # lightnb export: `%lightnb run {target}` is the app `lightnb run` starts",
            f"app = {target} if isinstance({target}, lightnb.LightningApp) else "
            f"lightnb.LightningApp({target})",
        )
    if command == "cluster" and len(words) > 2:
        spec = " ".join(words[2:])
        return Decision.replace(f"# {escape.text}  (lightnb export: give it at run time: --cluster {spec})")
    return DROP  # view, status, stop, step, logs, export: interactive only


# -- what a statement does ----------------------------------------------------------------------------------
def driving_call(statement: ast.stmt, app: str | None) -> str | None:
    """``app.start()``, ``app.wait(...)``, ``await app.wait_async()`` as a statement: the method name."""
    if not isinstance(statement, ast.Expr):
        return None
    value = statement.value.value if isinstance(statement.value, ast.Await) else statement.value
    return app_method(value, app, DRIVING)


def driving_calls(statement: ast.stmt, app: str | None) -> set[str]:
    """The app methods that start, wait for or stop the app called anywhere in ``statement`` (not in a
    function or class it defines)."""
    found: set[str] = set()
    pending: list[ast.AST] = [statement]
    while pending:
        node = pending.pop()
        method = app_method(node, app, DRIVING)
        if method:
            found.add(method)
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                pending.append(child)
    return found


def app_method(node: ast.AST, app: str | None, methods: frozenset[str]) -> str | None:
    """``app.<method>(...)`` with ``method`` in ``methods``: its name."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods \
            and isinstance(node.func.value, ast.Name) and node.func.value.id == app:
        return node.func.attr
    return None


def display_only(statement: ast.stmt, app: str | None) -> bool:
    """A bare expression that only shows something: the app or a part of it, ``app.view()``, a widget."""
    if not isinstance(statement, ast.Expr):
        return False
    value = statement.value
    if isinstance(value, ast.Call):
        func = value.func
        callee = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return callee in DISPLAY_CALLS or app_method(value, app, SHOWING) is not None
    return isinstance(value, (ast.Name, ast.Attribute, ast.Subscript)) and root_name(value) == app


def widget_assignment(statement: ast.stmt, app: str | None) -> set[str]:
    """``form = ParamsForm(...)`` / ``view = app.view()``: the names bound to a widget (else empty)."""
    if not isinstance(statement, (ast.Assign, ast.AnnAssign)) or statement.value is None:
        return set()
    if not display_only(ast.Expr(statement.value), app) or not isinstance(statement.value, ast.Call):
        return set()
    return assigns(statement)


def shows_widget(statement: ast.stmt, widgets: set[str]) -> bool:
    """A bare expression showing a widget bound earlier (``form``, ``display(form)``)."""
    if not isinstance(statement, ast.Expr) or not widgets:
        return False
    value = statement.value
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "display":
        return True
    return root_name(value) in widgets


def root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def reads(statement: ast.stmt) -> set[str]:
    return {node.id for node in ast.walk(statement) if isinstance(node, ast.Name) and
            isinstance(node.ctx, ast.Load)} | _augmented(statement)


def _augmented(statement: ast.stmt) -> set[str]:
    if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
        return {statement.target.id}
    return set()


def assigns(statement: ast.stmt) -> set[str]:
    names = {node.id for node in ast.walk(statement) if isinstance(node, ast.Name) and
             isinstance(node.ctx, ast.Store)}
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(statement.name)
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        names |= {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    return names


def top_level_await(node: ast.AST) -> bool:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(child, (ast.Await, ast.AsyncFor, ast.AsyncWith)) or top_level_await(child):
            return True
    return False
