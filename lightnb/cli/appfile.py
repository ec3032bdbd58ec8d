"""Load an app script (or a notebook, exported in memory) and find its app: what ``lightnb run`` starts.

The file runs as a module named ``__lightnb_app__``, not ``__main__``: an embedded ``LocalCluster`` starts
its worker processes by re-importing ``__main__``, so a script loaded this way needs no
``if __name__ == "__main__":`` guard. The guard's block runs nonetheless, as ``python app.py`` would run it
(with the script's own arguments in ``sys.argv``: ``lightnb run app.py -- --lr 0.1``): an app built there —
from argparse options, say — is found, and ``app.run()`` there only marks the app that ``lightnb run`` then
runs. The module is registered in ``sys.modules`` and its classes travel to workers by value, as a
notebook's do.

The script's parameters are the cell marked ``# %% tags=["parameters"]`` (what ``lightnb export`` makes of
papermill's ``parameters`` cell); ``--param NAME=VALUE`` overrides them.

>>> app = load_app("app.py", {"lr": 0.1})
>>> app.run()
"""

from __future__ import annotations

import ast
import linecache
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle

from ..app import LightningApp, capturing_runs, is_main_guard
from ..export import PARAMETERS_MARKER

MODULE_NAME = "__lightnb_app__"
RUNS = "__lightnb_runs__"  # the module's record of the apps its code asked to run


class AppFileError(ValueError):
    """The file cannot give an app to run; the message names the file and what to do."""


def load_app(path: str | Path, parameters: Mapping[str, Any] | None = None,
             argv: Sequence[str] = ()) -> LightningApp:
    """The one ``LightningApp`` the script or notebook at ``path`` defines at module level (or in its
    ``__main__`` block), not started."""
    module = load_module(path, parameters, argv)
    return find_app(module, Path(path).name)


def load_module(path: str | Path, parameters: Mapping[str, Any] | None = None,
                argv: Sequence[str] = ()) -> ModuleType:
    """Run the script (or the export of the notebook) at ``path`` as the module ``__lightnb_app__``, its
    ``if __name__ == "__main__":`` blocks included, with ``sys.argv`` = ``[path, *argv]`` meanwhile.

    Errors in the file itself (the user's code) propagate as they are; a missing or unusable file, or an
    unknown parameter, is an :class:`AppFileError`.
    """
    file = Path(path)
    if not file.is_file():
        raise AppFileError(f"{file}: no such file")
    source, filename = read_source(file)
    if parameters:
        source = override_parameters(source, parameters, name=file.name)
    try:
        code = compile(run_main_blocks(ast.parse(source, filename)), filename, "exec", dont_inherit=True)
    except SyntaxError as error:
        raise AppFileError(f"{file.name}, line {error.lineno}: {error.msg}") from None
    module = ModuleType(MODULE_NAME)
    module.__file__ = str(file.resolve())
    sys.modules[MODULE_NAME] = module
    directory = str(file.resolve().parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)  # as `python app.py` does: helper modules beside it import
    # What the module defines goes to workers by value: they cannot import `__lightnb_app__`.
    cloudpickle.register_pickle_by_value(module)
    saved_argv = sys.argv
    sys.argv = [str(file), *argv]
    try:
        with capturing_runs() as runs:
            exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(MODULE_NAME, None)
        raise
    finally:
        sys.argv = saved_argv
    module.__dict__[RUNS] = list(runs)
    return module


def run_main_blocks(tree: ast.Module) -> ast.Module:
    """``tree`` with each top-level ``if __name__ == "__main__":`` made ``if True:`` (its block runs)."""
    for statement in tree.body:
        if is_main_guard(statement):
            assert isinstance(statement, ast.If)
            statement.test = ast.copy_location(ast.Constant(True), statement.test)
    return tree


def read_source(file: Path) -> tuple[str, str]:
    """(source, the file name its code reports): a script as it is, a notebook as its app script."""
    if file.suffix == ".ipynb":
        from ..export import ExportError, convert, read_notebook

        try:
            source = convert(read_notebook(file), name=file.name).source
        except ExportError as error:
            raise AppFileError(str(error)) from None
        filename = f"{file} (as exported by lightnb export)"
        # Tracebacks show the lines of the script, which exists only here.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        return source, filename
    if file.suffix != ".py":
        raise AppFileError(f"{file.name}: lightnb run takes an app script (.py) or a notebook (.ipynb)")
    try:
        # The absolute path: tracebacks show the source lines, on workers of this machine too.
        return file.read_text(encoding="utf-8"), str(file.resolve())
    except (OSError, UnicodeDecodeError) as error:
        raise AppFileError(f"{file} cannot be read: {error}") from None


def find_app(module: ModuleType, where: str) -> LightningApp:
    """The module's one ``LightningApp`` (at module level); :class:`AppFileError` for none or several."""
    apps: dict[int, list[str]] = {}
    found: dict[int, LightningApp] = {}
    for name, value in vars(module).items():
        if isinstance(value, LightningApp):
            apps.setdefault(id(value), []).append(name)
            found[id(value)] = value
    if not found:  # one built and run inside a function of the __main__ block: `main()` → app.run()
        for value in vars(module).get(RUNS, []):
            found[id(value)] = value
            apps.setdefault(id(value), []).append("app.run()")
    if not found:
        raise AppFileError(f"{where} defines no LightningApp at module level; add one, such as "
                           "`app = LightningApp(Root())` (one its `if __name__ == \"__main__\":` block builds "
                           "counts too)")
    if len(found) > 1:
        names = ", ".join(" = ".join(names) for names in apps.values())
        raise AppFileError(f"{where} defines {len(found)} LightningApps ({names}); lightnb run runs one. "
                           "Keep one at module level (build the others inside a function)")
    app = next(iter(found.values()))
    if app.stage != "not_started":
        raise AppFileError(f"{where} starts its app itself while it loads (app.run() / app.start() at "
                           "module level); put that under `if __name__ == \"__main__\":` so that lightnb run "
                           "starts it")
    return app


def parse_assignment(text: str, option: str) -> tuple[str, str]:
    """``NAME=VALUE`` → (name, value text); :class:`AppFileError` naming ``option`` otherwise."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name or (option == "--param" and not name.isidentifier()):
        raise AppFileError(f"{option} expects NAME=VALUE, not {text!r}")
    return name, value


def parameter_value(text: str) -> Any:
    """A ``--param`` value: a Python literal (``0.1``, ``[1, 2]``, ``True``, ``'x'``), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


# -- the parameters cell ------------------------------------------------------------------------------------
def parameter_names(source: str) -> list[str]:
    """The names the script's parameters cell assigns (empty if it has none)."""
    block = _parameters_block(source)
    if block is None:
        return []
    try:
        tree = ast.parse("\n".join(source.splitlines()[block[0]:block[1]]))
    except SyntaxError:
        return []
    names: list[str] = []
    for statement in tree.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else \
            [statement.target] if isinstance(statement, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name) and n.id not in names]
    return names


def override_parameters(source: str, values: Mapping[str, Any], *, name: str = "the script") -> str:
    """``source`` with its parameters cell's values replaced by ``values``.

    The assignments go on the line of the marker that ends the cell, so every other line keeps its number
    (tracebacks point at the file's real lines). An unknown name is an error listing the parameters.
    """
    block = _parameters_block(source)
    if block is None:
        raise AppFileError(f"{name} has no parameters cell to override: a cell marked `{PARAMETERS_MARKER}` "
                           "(lightnb export makes one from the notebook's cell tagged `parameters`)")
    known = parameter_names(source)
    unknown = [key for key in values if key not in known]
    if unknown:
        raise AppFileError(f"{name} has no parameter {', '.join(map(repr, unknown))}; its parameters are: "
                           f"{', '.join(known) or 'none'}")
    assignments = "; ".join(f"{key} = {value!r}" for key, value in values.items())
    lines = source.splitlines()
    end = block[1]
    if end < len(lines):
        lines[end] = f"{assignments}  # --param overrides; {lines[end]}"
    else:
        lines.append(f"{assignments}  # --param overrides")
    return "\n".join(lines) + "\n"


def _parameters_block(source: str) -> tuple[int, int] | None:
    """(first, end) 0-based line numbers of the parameters cell's body, end exclusive: up to the next cell."""
    lines = source.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.strip() == PARAMETERS_MARKER), None)
    if start is None:
        return None
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("# %%")), len(lines))
    return start, end
