"""``%load_ext lightnb`` and the ``%lightnb`` magics in a real kernel, works on a real Dask cluster."""

from __future__ import annotations

import re
import textwrap
import time

import pytest
from kernel_session import KernelSession
from notebook_apps import PRELUDE

APPS = PRELUDE + textwrap.dedent('''
    class Root(LightningFlow):
        def __init__(self, steps=10):
            super().__init__()
            self.counter = Steps(steps, period=0.05)
            self.passes = 0

        def run(self):
            self.passes += 1
            self.counter.run()
''')


@pytest.fixture(scope="module")
def kernel():
    with KernelSession() as session:
        loaded = session.execute("%load_ext lightnb")
        assert loaded.ok and not loaded.error, loaded.text
        setup = session.execute(APPS)
        assert setup.ok, setup.text
        assert session.execute("%lightnb cluster cluster").ok  # the apps below run on it
        yield session
        session.execute("%lightnb stop\ncluster.close()")


def _no_traceback(run) -> None:
    assert run.ok and run.error is None and "Traceback" not in run.text, run.text


def _eventually(kernel, expression, expected, timeout=60):
    deadline = time.monotonic() + timeout
    while (value := kernel.value(expression)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def test_load_ext_is_light_and_quick():
    with KernelSession() as fresh:
        started = time.perf_counter()
        run = fresh.execute("%load_ext lightnb")
        elapsed = time.perf_counter() - started
        _no_traceback(run)
        heavy = fresh.value("sorted(m for m in ('torch', 'gradio', 'tensorboard', 'lightning', 'distributed', "
                            "'ipywidgets', 'anywidget') if m in __import__('sys').modules)")
    assert heavy == [], f"%load_ext lightnb imported {heavy}"
    assert elapsed < 10  # the figure (≤ 1 s) is measured in benchmarks/notebook_load_ext.py


def test_usage_and_bad_input_give_a_short_message(kernel):
    help_run = kernel.execute("%lightnb")
    _no_traceback(help_run)
    assert help_run.stdout.startswith("Usage:") and "%lightnb run APP" in help_run.stdout

    for line, message in [
        ("%lightnb bogus", "unknown subcommand 'bogus'"),
        ("%lightnb run", "the following arguments are required: app"),
        ("%lightnb run nothing_here", "no variable 'nothing_here' in the notebook"),
        ("x = 3\n%lightnb run x", "x is a int, not a LightningApp"),
        ("%lightnb stop ghost", "no app 'ghost' in this kernel"),
        ("%lightnb logs root.nowhere", "no component 'root.nowhere'"),
        ("%lightnb step many", "no app 'many' in this kernel"),
        ("%lightnb cluster somewhere", "'somewhere' is not a cluster"),
        ("%lightnb run x --colour red", "unrecognized arguments: --colour red"),
        ('%lightnb logs "unclosed', "cannot read the arguments"),
    ]:
        run = kernel.execute(line)
        _no_traceback(run)
        assert run.stderr.startswith(f"%lightnb: {message}"), (line, run.stderr)
        assert "Usage" in run.stderr


def test_run_status_logs_and_rerun(kernel):
    start = kernel.mark()
    run = kernel.execute("app = LightningApp(Root(40))\n%lightnb run app")
    _no_traceback(run)
    assert re.match(r"started app \(root-[0-9a-f]{8}\)", run.stdout), run.stdout
    assert kernel.widget_ids("AppView", start), "%lightnb run shows the app's live view"
    first_id = kernel.value("app.app_id")
    assert kernel.value("str(app.loop.executor.description)").startswith("LocalCluster")  # %lightnb cluster

    assert _eventually(kernel, "app.root.counter.progress", 1.0) == 1.0
    status = kernel.execute("%lightnb status app")
    _no_traceback(status)
    (table,) = status.displays
    text = table["text/plain"]
    assert re.search(r"app\s+\(root-[0-9a-f]{8}\)\s+● running", text), text
    assert re.search(r"root\.counter\s+✔ succeeded\s+█{10} 100%", text), text
    assert "<table" in table["text/html"] and "root.counter" in table["text/html"]

    logs = kernel.execute("%lightnb logs counter -n 3")
    _no_traceback(logs)
    assert logs.stdout == "step 38 of 40\nstep 39 of 40\nstep 40 of 40\n"

    again = kernel.execute("%lightnb run app --no-view")
    _no_traceback(again)
    assert "app had already run: started a fresh copy of it" in again.stdout
    assert kernel.value("app.app_id") != first_id
    assert kernel.value("str(app.stage)") == "running"
    assert kernel.value(f"[str(a.stage) for a in __import__('lightnb.app').app.all_apps() "
                        f"if a.app_id == {first_id!r}]") == ["stopped"]


def test_running_a_new_app_under_a_name_stops_the_previous_one(kernel):
    kernel.execute("job = LightningApp(Root(10**6))\n%lightnb run job --no-view")
    previous = kernel.value("job.app_id")
    run = kernel.execute("job = LightningApp(Root(10**6))\n%lightnb run job --no-view")
    _no_traceback(run)
    assert f"stopped the app previously started as job ({previous})" in run.stdout
    running = kernel.value("[a.app_id for a in __import__('lightnb.app').app.running_apps()]")
    assert previous not in running and kernel.value("job.app_id") in running

    stop = kernel.execute("%lightnb stop")
    _no_traceback(stop)
    assert "stopped job" in stop.stdout
    assert kernel.value("[str(a.stage) for a in __import__('lightnb.app').app.running_apps()]") == []


def test_magics_see_apps_started_without_them(kernel):
    kernel.execute("plain = LightningApp(Root(10**6))\nplain.start()")
    status = kernel.execute("%lightnb status")
    assert re.search(r"plain\s+\(root-[0-9a-f]{8}\)\s+● running", status.displays[0]["text/plain"])
    stop = kernel.execute("%lightnb stop plain")
    _no_traceback(stop)
    assert stop.stdout.startswith("stopped plain (root-")
    assert kernel.value("str(plain.stage)") == "stopped"


def test_step_advances_a_paused_app(kernel):
    kernel.execute("stepped = LightningApp(Root(3))")
    run = kernel.execute("%lightnb step 3 stepped")
    _no_traceback(run)
    assert run.stdout == "stepped: 3 passes, stage running\n"
    assert kernel.value("stepped.root.passes") >= 3
    kernel.execute("stepped.stop()")


def test_view_and_cluster(kernel):
    start = kernel.mark()
    view = kernel.execute("%lightnb view app")
    _no_traceback(view)
    assert kernel.widget_ids("AppView", start)

    kernel.execute("seen = LightningApp(Root(10**6))\n%lightnb run seen --no-view")
    shown = kernel.execute("%lightnb cluster")
    _no_traceback(shown)
    assert shown.stdout.startswith("apps created without a cluster use LocalCluster tls://127.0.0.1:")
    assert re.search(r"seen \(root-[0-9a-f]{8}\) runs on LocalCluster at tls://127.0.0.1:", shown.stdout), shown.stdout

    kernel.execute("%lightnb cluster local")
    assert kernel.execute("%lightnb cluster").stdout.startswith(
        "apps created without a cluster use the warm embedded LocalCluster (the default: shared by the "
        "kernel's apps")
    kernel.execute("%lightnb cluster cluster\n%lightnb stop seen")


def test_export_is_the_command_line_export(kernel, tmp_path):
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext lightnb"),
        nbformat.v4.new_code_cell(APPS.replace("cluster = start_local_cluster(n_workers=2)", "")),
        nbformat.v4.new_code_cell("app = LightningApp(Root(3))\n%lightnb run app"),
    ])
    source = tmp_path / "counting.ipynb"
    nbformat.write(notebook, source)
    script = tmp_path / "counting.py"
    run = kernel.execute(f"%lightnb export {source} -o {script}")
    _no_traceback(run)
    assert f"wrote {script}" in run.stderr
    compile(script.read_text(), str(script), "exec")
    assert "LightningApp(Root(3))" in script.read_text()

    missing = kernel.execute(f"%lightnb export {tmp_path / 'nope.ipynb'}")
    _no_traceback(missing)
    assert "nope.ipynb" in missing.stderr and "%lightnb: export failed (exit code 2)" in missing.stderr
