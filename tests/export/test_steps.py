"""The export's steps one by one: reading cells, finding the app, deciding fates, rendering."""

from __future__ import annotations

import ast

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from lightnb.export import ExportError
from lightnb.export.cells import CodeCell, MarkdownCell, parse_cells, parse_code_cell, replace_escapes
from lightnb.export.fates import (
    COMMENT,
    DROP,
    KEEP,
    ClassifiedCell,
    Decision,
    Fate,
    Plan,
    classify_cell,
    classify_escape,
    classify_statement,
)
from lightnb.export.find import find_app
from lightnb.export.render import COMMENTED_NOTE, render_code, render_markdown, render_script


def code(source: str, number: int = 1, parameters: bool = False) -> CodeCell:
    return parse_code_cell(number, source, parameters, "nb.ipynb")


# -- step 1: reading ----------------------------------------------------------------------------------------
def test_escapes_become_pass_placeholders_with_the_same_line_count():
    python, escapes, cell_magic = replace_escapes("x = 1\n!pip install \\\n  tqdm\nfiles = !ls\nif x:\n    %time y")
    assert python == "x = 1\npass\n\npass\nif x:\n    pass"
    assert {line: escape.text for line, escape in escapes.items()} == {
        2: "!pip install tqdm", 4: "files = !ls", 6: "%time y"}
    assert escapes[6].indent == "    " and cell_magic is None


def test_an_escape_inside_brackets_or_strings_is_python():
    source = 'x = (1,\n  !2)\ns = """\n%not a magic\n"""'
    python, escapes, _ = replace_escapes(source)
    assert escapes == {} and python == source


def test_cell_magics_hide_the_cell_unless_its_code_runs_as_is():
    python, escapes, magic = replace_escapes("%%bash\necho hi\nls")
    assert python == "pass\n\n" and escapes[1] is magic and magic.text == "%%bash\necho hi\nls"
    python, escapes, magic = replace_escapes("%%time\nx = 1")
    assert python == "pass\nx = 1" and magic.words == ["time"]


def test_parse_cells_skips_tagged_empty_and_raw_cells_and_numbers_like_the_user():
    notebook = new_notebook(cells=[
        new_markdown_cell("# Title"), new_code_cell("a = 1"), new_code_cell("   "),
        new_code_cell("b = 2", metadata={"tags": ["lightnb-skip"]}),
        new_code_cell("lr = 0.1", metadata={"tags": ["parameters"]}), new_markdown_cell(""),
    ])
    cells = parse_cells(notebook, "nb.ipynb")
    assert [type(cell) for cell in cells] == [MarkdownCell, CodeCell, CodeCell]
    assert [cell.number for cell in cells] == [1, 2, 5]
    assert cells[2].parameters and not cells[1].parameters


def test_a_cell_that_is_not_python_names_the_cell():
    with pytest.raises(ExportError, match=r"nb.ipynb, cell 3 \(`x = = 1`\), line 1: .*lightnb-skip"):
        code("x = = 1", number=3)


# -- step 2: finding the app --------------------------------------------------------------------------------
def test_find_app_by_construction_or_by_the_run_magic():
    assert find_app([code("my_app = LightningApp(Root())")], "nb.ipynb") == "my_app"
    assert find_app([code("lightnb.LightningApp(Root()).run()")], "nb.ipynb") == "app"
    assert find_app([code("%lightnb run Root()")], "nb.ipynb") == "app"
    assert find_app([code("app = LightningApp(Root())\n%lightnb run app")], "nb.ipynb") == "app"


def test_find_app_needs_exactly_one():
    with pytest.raises(ExportError, match="creates no LightningApp"):
        find_app([MarkdownCell(1, "text"), code("x = 1")], "nb.ipynb")
    with pytest.raises(ExportError, match=r"creates 2 apps \(a in cell 1 .*; b in cell 2"):
        find_app([code("a = LightningApp(R())"), code("b = LightningApp(R())", number=2)], "nb.ipynb")


# -- step 3: deciding fates ---------------------------------------------------------------------------------
def decide(source: str, plan: Plan, strict: bool = False) -> list[Decision]:
    cell = code(source)
    return [classify_statement(statement, cell, plan, "nb.ipynb", strict) for statement in cell.tree.body]


def test_fates_of_statements_around_the_app():
    plan = Plan(app_name="app")
    assert decide("app = LightningApp(Root())", plan) == [KEEP]
    assert plan.tainted == {"app"} and not plan.started
    assert decide("app.start()\napp\napp.view()\nview = app.view()\nview", plan) == [DROP] * 5
    assert plan.started and plan.widgets == {"view"}
    assert decide("state = app.state\nprint(state)\nx = 1", plan) == [COMMENT, COMMENT, KEEP]
    assert decide("try:\n    app.wait()\nfinally:\n    done = True", plan) == [COMMENT]
    assert "done" in plan.tainted


def test_an_app_started_where_it_is_made_is_replaced_by_its_construction():
    plan = Plan(app_name="app")
    assert decide("app = LightningApp(Root(), cluster=c).run()", plan) == [
        Decision(Fate.REPLACE, ("app = LightningApp(Root(), cluster=c)",))]
    assert plan.started


def test_top_level_await_cannot_be_exported():
    with pytest.raises(ExportError, match="top-level `await`"):
        decide("await something()", Plan(app_name="app"))


def test_fates_of_escapes():
    plan = Plan(app_name="app", script="s.py")
    cell = code("%load_ext lightnb\n%lightnb status\n%matplotlib inline\n%lightnb cluster tcp://h:1")
    escapes = list(cell.escapes.values())
    fates = [classify_escape(escape, cell, plan, "nb.ipynb", False) for escape in escapes]
    assert fates[:2] == [DROP, DROP]
    assert fates[2] == Decision.replace("# %matplotlib inline  (lightnb export: IPython magic, not run in a script)")
    assert fates[3].lines == ("# %lightnb cluster tcp://h:1  (lightnb export: give it at run time: --cluster "
                              "tcp://h:1)",)
    assert plan.notes == ["cell 1 (`%load_ext lightnb`), line 3: `%matplotlib inline` is commented out"]
    with pytest.raises(ExportError, match="has no equivalent in a script"):
        classify_escape(escapes[2], cell, plan, "nb.ipynb", True)


def test_the_run_magic_becomes_the_module_level_app():
    plan = Plan(app_name="app", script="s.py")
    cell = code("%lightnb run Root() --cluster x")
    decision = classify_escape(cell.escapes[1], cell, plan, "nb.ipynb", False)
    assert decision.fate is Fate.REPLACE and decision.lines[-1].startswith("app = Root() if isinstance(")
    assert decision.lines[0] == "# lightnb export: `--cluster x` is given at run time: lightnb run s.py --cluster x"
    assert plan.started and "app" in plan.tainted


def test_classify_cell_notes_escapes_inside_blocks_first():
    plan = Plan(app_name="app")
    classified = classify_cell(code("if True:\n    !ls\nx = 1"), plan, "nb.ipynb", False)
    assert classified.decisions == [KEEP, KEEP]
    assert [(escape.text, note) for escape, note in classified.block_escapes] == [
        ("!ls", "lightnb export: shell command, not run in a script")]


# -- step 4: rendering --------------------------------------------------------------------------------------
def test_render_code_applies_the_decisions():
    cell = code("a = 1; b = 2\nc = 3\nd = 4")
    out = render_code(ClassifiedCell(cell, [KEEP, DROP, COMMENT, Decision.replace("e = 5", "f = 6")]), "s.py")
    assert out == f"# %%\na = 1\n{COMMENTED_NOTE}\n# c = 3\ne = 5\nf = 6"
    assert render_code(ClassifiedCell(cell, [DROP] * 4), "s.py") == ""


def test_render_code_of_parameters_and_block_escapes():
    cell = code("if x:\n    !ls", parameters=True)
    out = render_code(ClassifiedCell(cell, [KEEP], [(cell.escapes[2], "why")]), "s.py")
    assert out == ('# %% tags=["parameters"]\n# The script\'s parameters: `lightnb run s.py --param NAME=VALUE` '
                   "overrides them.\nif x:\n    pass  # !ls  (why)")


def test_render_markdown_and_script():
    assert render_markdown(MarkdownCell(1, "# Title\n\ntext \n")) == "# %% [markdown]\n# # Title\n#\n# text"
    script = render_script([MarkdownCell(1, "hi")], notebook="dir/nb.ipynb", script="s.py", app_name="a")
    assert script.startswith("# App script exported from nb.ipynb by `lightnb export`.\n")
    assert "\n\n\n# %% [markdown]\n# hi\n\n\n# %%\nif __name__" in script and script.endswith("    a.run()\n")
    compile(script, "s.py", "exec", ast.PyCF_ONLY_AST)
