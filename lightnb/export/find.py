"""Step 2, finding the app: the name of the one ``LightningApp`` the notebook creates."""

from __future__ import annotations

import ast

from .base import ExportError
from .cells import Cell, CodeCell, Escape


def find_app(cells: list[Cell], name: str) -> str:
    """The name of the notebook's one app; :class:`ExportError` if it has none or several."""
    made: list[tuple[str, str]] = []  # (variable, where)
    known: set[str] = set()
    for cell in cells:
        if not isinstance(cell, CodeCell):
            continue
        for statement in cell.tree.body:
            found = construction(statement)
            if found is not None:
                made.append((found[0], cell.where(statement.lineno)))
                known.add(found[0])
            escape = cell.escapes.get(statement.lineno) if isinstance(statement, ast.Pass) else None
            target = run_magic_target(escape) if escape is not None else None
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


def is_app_class(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "LightningApp") or \
        (isinstance(node, ast.Attribute) and node.attr == "LightningApp")


def construction(statement: ast.stmt) -> tuple[str, ast.Call, bool] | None:
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
    if is_app_class(value.func) and not isinstance(statement, ast.Expr):
        return target.id, value, False
    func = value.func
    if isinstance(func, ast.Attribute) and func.attr in ("start", "run") and \
            isinstance(func.value, ast.Call) and is_app_class(func.value.func):
        return target.id, func.value, True
    return None


def run_magic_target(escape: Escape) -> str | None:
    """The APP of ``%lightnb run APP [...]``."""
    words = escape.words
    if len(words) >= 3 and words[0] == "lightnb" and words[1] == "run" and escape.text.startswith("%"):
        return words[2]
    return None
