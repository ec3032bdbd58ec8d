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

The conversion is four pure steps, each a module: :mod:`~lightnb.export.cells` reads the cells (IPython
escapes set aside), :mod:`~lightnb.export.find` finds the app, :mod:`~lightnb.export.fates` decides the fate
of every statement and escape, :mod:`~lightnb.export.render` writes the script. It belongs to neither front:
the ``lightnb`` command and ``%lightnb`` both run :mod:`~lightnb.export.command`.

>>> from lightnb.export import export_notebook
>>> export_notebook("train.ipynb", "app.py").path     # then: lightnb run app.py --cluster tcp://host:8786
PosixPath('app.py')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import EXPORT_MARK, PARAMETERS_MARKER, PARAMETERS_TAG, SKIP_TAGS, ExportError
from .cells import parse_cells
from .fates import Plan, classify_cells
from .find import find_app
from .render import render_script

__all__ = [
    "EXPORT_MARK", "PARAMETERS_MARKER", "PARAMETERS_TAG", "SKIP_TAGS", "ExportError", "ExportedScript",
    "convert", "export_notebook", "is_exported_script", "notebook_to_script", "read_notebook",
]


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
    cells = parse_cells(notebook, name)
    app_name = find_app(cells, name)
    script = script_name or Path(name).with_suffix(".py").name
    plan = Plan(app_name=app_name, script=script)
    classified = classify_cells(cells, plan, name, strict)
    source = render_script(classified, notebook=name, script=script, app_name=app_name)
    return ExportedScript(source, app_name, plan.notes)


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
