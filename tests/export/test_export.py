"""`lightnb export`: notebooks become app scripts that Python compiles and that define one app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from script_apps import COUNTER_DEFINITIONS, REPO, counter_notebook, write_notebook

from lightnb.export import ExportError, convert, export_notebook, notebook_to_script

GOLDEN = Path(__file__).parent / "golden"
DEMOS = sorted((REPO / "notebooks").glob("*.ipynb"))


def showcase_notebook() -> nbformat.NotebookNode:
    """Every construct the export handles, in the order a user would write them."""
    return new_notebook(cells=[
        new_markdown_cell("# Showcase\nA notebook with everything `lightnb export` deals with."),
        new_code_cell("%load_ext lightnb\n%matplotlib inline\n!pip install tqdm\nfiles = !ls"),
        new_code_cell("steps = 3\nlabel = 'showcase'", metadata={"tags": ["parameters"]}),
        new_code_cell(COUNTER_DEFINITIONS),
        new_code_cell("print('exploring')", metadata={"tags": ["skip"]}),
        new_code_cell("%%bash\necho not in the script"),
        new_code_cell("%%time\nwarmup = sum(range(10))"),
        new_code_cell("if warmup:\n    %time extra = 1\n    more = (warmup\n            % 7)"),
        new_code_cell("app = LightningApp(Root())\napp.root.label = label.upper()\napp"),
        new_code_cell("%lightnb cluster tcp://10.0.0.5:8786\n%lightnb run app\napp.view(); ready = True"),
        new_code_cell("%lightnb status\napp.state"),
        new_code_cell("app.wait(60)\nresult = app.root.total\nprint(result)\ndoubled = result * 2\n"
                      "import math\nsquare = math.sqrt(16)"),
        new_code_cell("try:\n    app.wait()\nexcept Exception as error:\n    print(error)"),
        new_code_cell("print(doubled)\nprint(square)"),
    ])


def compiles(script: str, tmp_path: Path, name: str = "app.py") -> Path:
    path = tmp_path / name
    path.write_text(script)
    subprocess.run([sys.executable, "-m", "py_compile", str(path)], check=True, capture_output=True)
    return path


def test_showcase_matches_the_golden_script(tmp_path: Path) -> None:
    exported = convert(showcase_notebook(), name="showcase.ipynb")
    compiles(exported.source, tmp_path)
    assert exported.source == (GOLDEN / "showcase.py").read_text()
    assert exported.app_name == "app"
    assert any("`%matplotlib inline` is commented out" in note for note in exported.notes)
    assert any("cell 6 (`%%bash`)" in note for note in exported.notes)


def test_script_defines_the_app_and_never_starts_it_on_import(tmp_path: Path) -> None:
    script = notebook_to_script(counter_notebook(), name="counter.ipynb")
    code = compile(script, "counter.py", "exec")
    namespace: dict[str, object] = {"__name__": "imported"}
    exec(code, namespace)
    from lightnb import LightningApp

    app = namespace["app"]
    assert isinstance(app, LightningApp)
    assert app.stage == "not_started"
    assert "app.start()" not in script and "app.wait(" not in script and "app.view" not in script
    assert "only while exploring" not in script  # the lightnb-skip cell
    assert "# print('STATE=' + json.dumps(app.state))" in script  # used the running app: commented out
    footer = script.rstrip().rsplit("# %%\n", 1)[1].splitlines()
    assert footer[0] == 'if __name__ == "__main__":' and footer[-1] == "    app.run()"


def test_parameters_cell_is_kept_and_marked(tmp_path: Path) -> None:
    script = notebook_to_script(counter_notebook(steps=7), name="counter.ipynb")
    block = script.split('# %% tags=["parameters"]\n', 1)[1].split("# %%", 1)[0]
    assert "steps = 7\nlabel = 'notebook'" in block
    assert "--param NAME=VALUE" in block


def test_started_app_from_a_chained_start_and_from_a_flow_given_to_the_magic(tmp_path: Path) -> None:
    chained = new_notebook(cells=[
        new_code_cell("steps = 3\nlabel = 'x'\n" + COUNTER_DEFINITIONS),
        new_code_cell("app = LightningApp(Root()).start()\napp.wait()"),
    ])
    script = notebook_to_script(chained)
    compiles(script, tmp_path)
    assert "\napp = LightningApp(Root())\n" in script and ".start()" not in script

    magic = new_notebook(cells=[
        new_code_cell("steps = 3\nlabel = 'x'\n" + COUNTER_DEFINITIONS),
        new_code_cell("root = Root()\n%lightnb run root --cluster cluster.yaml"),
    ])
    script = notebook_to_script(magic)
    compiles(script, tmp_path)
    namespace: dict[str, object] = {"__name__": "imported"}
    exec(compile(script, "app.py", "exec"), namespace)
    assert type(namespace["app"]).__name__ == "LightningApp"
    assert namespace["app"].root is namespace["root"]
    assert "lightnb run notebook.py --cluster cluster.yaml" in script


def test_views_and_forms_are_left_out(tmp_path: Path) -> None:
    notebook = new_notebook(cells=[
        new_code_cell("steps = 3\nlabel = 'x'\n" + COUNTER_DEFINITIONS),
        new_code_cell("from lightnb.ui import ParamsForm\napp = LightningApp(Root())\n"
                      "form = ParamsForm(app.root, ['label'])\nform\nview = app.view()\ndisplay(view)"),
        new_code_cell("chosen = form.value\nprint(chosen)\nprint('kept')"),
    ])
    script = notebook_to_script(notebook)
    assert "ParamsForm(" not in script and "app.view()" not in script and "display(" not in script
    assert "# chosen = form.value\n# print(chosen)\nprint('kept')" in script
    compiles(script, tmp_path)


def test_strict_refuses_magics_it_cannot_translate() -> None:
    notebook = counter_notebook(extra_cells=[new_code_cell("%matplotlib inline")])
    notebook_to_script(notebook)  # commented out by default
    with pytest.raises(ExportError, match=r"cell \d+ \(`%matplotlib inline`\).*--strict"):
        notebook_to_script(notebook, strict=True)


@pytest.mark.parametrize(("cells", "message"), [
    ([new_code_cell("x = 1")], r"creates no LightningApp .* `app = LightningApp\(Root\(\)\)`"),
    ([new_code_cell(COUNTER_DEFINITIONS), new_code_cell("a = LightningApp(Root())"),
      new_markdown_cell("more"), new_code_cell("b = LightningApp(Root())")],
     r"creates 2 apps \(a in cell 2 .*; b in cell 4 .*\).*lightnb-skip"),
    ([new_code_cell("x = 1"), new_markdown_cell("text"), new_code_cell("def broken(:\n    pass")],
     r"cell 3 \(`def broken\(:`\), line 1: invalid syntax"),
    ([new_code_cell(COUNTER_DEFINITIONS), new_code_cell("import asyncio\nawait asyncio.sleep(0)"),
      new_code_cell("app = LightningApp(Root())")], r"cell 2 .*line 2: top-level `await`"),
])
def test_errors_name_the_cell(cells: list, message: str) -> None:
    with pytest.raises(ExportError, match=message):
        notebook_to_script(new_notebook(cells=cells), name="bad.ipynb")


def test_other_languages_are_refused() -> None:
    notebook = counter_notebook()
    notebook.metadata["kernelspec"]["language"] = "R"
    with pytest.raises(ExportError, match="is a R notebook"):
        notebook_to_script(notebook, name="r.ipynb")


def test_export_notebook_writes_beside_it_and_keeps_files_it_did_not_write(tmp_path: Path) -> None:
    notebook = write_notebook(counter_notebook(), tmp_path / "counter.ipynb")
    exported = export_notebook(notebook)
    assert exported.path == tmp_path / "counter.py"
    compiles(exported.path.read_text(), tmp_path)
    export_notebook(notebook)  # its own earlier export is replaced

    mine = tmp_path / "mine.py"
    mine.write_text("print('my own script')\n")
    with pytest.raises(ExportError, match="mine.py exists and was not written by lightnb export; it is kept"):
        export_notebook(notebook, mine)
    assert mine.read_text() == "print('my own script')\n"
    export_notebook(notebook, mine, force=True)
    assert "app = LightningApp(Root())" in mine.read_text()
    with pytest.raises(ExportError, match="is the notebook itself"):
        export_notebook(notebook, notebook)


def test_the_script_tells_how_to_run_it_by_the_name_it_was_written_to(tmp_path: Path) -> None:
    notebook = write_notebook(counter_notebook(), tmp_path / "nb.ipynb")
    source = export_notebook(notebook, tmp_path / "app.py").path.read_text()
    assert "Run it with `lightnb run app.py`" in source and "python app.py" in source
    assert "nb.py" not in source
    # Printed to standard output, it has no file name of its own: the notebook's, with .py.
    assert "Run it with `lightnb run nb.py`" in convert(nbformat.read(notebook, as_version=4), name="nb.ipynb").source


def test_broken_notebook_files(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no such notebook"):
        export_notebook(tmp_path / "missing.ipynb")
    bad = tmp_path / "bad.ipynb"
    bad.write_text('{"cells": [')
    with pytest.raises(ExportError, match="bad.ipynb is not a notebook: it is not valid JSON"):
        export_notebook(bad)


@pytest.mark.parametrize("notebook", [*DEMOS, "counter (built here)"], ids=str)
def test_demo_notebooks_export_to_scripts_python_compiles(notebook: Path | str, tmp_path: Path) -> None:
    if isinstance(notebook, Path):
        exported = export_notebook(notebook, tmp_path / f"{notebook.stem}.py")
    else:
        exported = export_notebook(write_notebook(counter_notebook(), tmp_path / "counter.ipynb"))
    assert exported.path is not None
    compiles(exported.path.read_text(), tmp_path, exported.path.name)
