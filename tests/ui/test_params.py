"""ParamsForm in a real kernel, with works on a real Dask cluster: a submission — the message a browser
sends — changes what the running app does; invalid input is shown in the form and never reaches the app."""

from __future__ import annotations

import textwrap
import time

import pytest
from kernel_session import KernelSession
from notebook_apps import PRELUDE

APP = PRELUDE + textwrap.dedent('''
    from lightnb.ui import ParamsForm

    class Learner(LightningWork):
        def __init__(self):
            super().__init__(parallel=True)
            self.trained = []

        def run(self, lr, epochs):
            self.trained = self.trained + [[lr, epochs]]

    class Pacer(LightningWork):
        def __init__(self):
            super().__init__(parallel=True)
            self.speed: float = 1.0
            self.seen_speed = None

        def run(self):
            while True:
                time.sleep(0.05)
                if self.seen_speed != self.speed:
                    self.seen_speed = self.speed

    class Tuning(LightningFlow):
        def __init__(self):
            super().__init__()
            self.lr: float = 0.01
            self.epochs: int = 2
            self.learner = Learner()
            self.pacer = Pacer()

        def run(self):
            self.learner.run(lr=self.lr, epochs=self.epochs)  # new values: a new training call
            self.pacer.run()

    app = LightningApp(Tuning(), cluster=cluster)
    app.start()
''')


@pytest.fixture(scope="module")
def kernel():
    with KernelSession() as session:
        setup = session.execute(APP)
        assert setup.ok, setup.text
        yield session
        session.execute("app.stop()\ncluster.close()")


def _form(kernel: KernelSession, code: str) -> str:
    return kernel.show(code, "ParamsForm")


def _status_after(kernel: KernelSession, model_id: str, since: int, states: tuple[str, ...]) -> dict:
    kernel.wait_for(lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == model_id
                    and m["content"]["data"].get("state", {}).get("status", {}).get("state") in states,
                    60, since=since, what=f"the form's status {states}")
    return kernel.widget_state(model_id)


def _eventually(kernel: KernelSession, expression: str, expected, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = kernel.value(expression)
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_a_submission_changes_what_the_flow_does(kernel):
    assert _eventually(kernel, "app.root.learner.trained", [[0.01, 2]]) == [[0.01, 2]]
    model_id = _form(kernel, 'form = ParamsForm(app.root, ["lr", "epochs"], ranges={"lr": (0, 1)})\nform')
    state = kernel.widget_state(model_id)
    assert state["fields"] == [
        {"name": "lr", "kind": "float", "choices": [], "min": 0, "max": 1, "exclusive": [False, False],
         "nullable": False},
        {"name": "epochs", "kind": "int", "choices": [], "min": None, "max": None, "exclusive": [False, False],
         "nullable": False}]
    assert state["values"] == {"lr": 0.01, "epochs": 2}

    start = kernel.mark()
    kernel.widget_custom(model_id, {"type": "submit", "values": {"lr": "0.5", "epochs": "4"}})
    state = _status_after(kernel, model_id, start, ("applied",))
    assert state["errors"] == {} and state["status"]["message"] == "applied lr=0.5, epochs=4 to root"
    assert state["values"] == {"lr": 0.5, "epochs": 4}
    # The flow saw both values in one pass: one new training call with both, none with a half-applied pair.
    assert _eventually(kernel, "app.root.learner.trained", [[0.01, 2], [0.5, 4]]) == [[0.01, 2], [0.5, 4]]

    # The form follows the attributes when something else changes them (here a cell).
    start = kernel.mark()
    kernel.execute("app.root.epochs = 6")
    kernel.wait_for(lambda m: m["content"].get("comm_id") == model_id
                    and m["content"].get("data", {}).get("state", {}).get("values") == {"lr": 0.5, "epochs": 6},
                    30, since=start, what="the form showing the new value")
    # ... and the flow reacts to the cell's value as it did to the form's.
    expected = [[0.01, 2], [0.5, 4], [0.5, 6]]
    assert _eventually(kernel, "app.root.learner.trained", expected) == expected


def test_invalid_input_is_shown_and_never_reaches_the_app(kernel):
    model_id = _form(kernel, 'form = ParamsForm(app.root, ["lr", "epochs"], ranges={"lr": (0, 1)})\nform')
    before = kernel.value("(app.root.lr, app.root.epochs, len(app.root.learner.trained))")

    start = kernel.mark()
    kernel.widget_custom(model_id, {"type": "submit", "values": {"lr": "fast", "epochs": "3"}})
    state = _status_after(kernel, model_id, start, ("invalid",))
    assert state["errors"] == {"lr": "'fast' is not a number"}
    assert state["status"]["message"] == "nothing was changed: lr: 'fast' is not a number"

    start = kernel.mark()
    kernel.widget_custom(model_id, {"type": "submit", "values": {"lr": "5", "epochs": "3"}})
    state = _status_after(kernel, model_id, start, ("invalid",))
    assert state["errors"] == {"lr": "5.0 is above the maximum 1"}

    time.sleep(0.5)  # had anything been applied, the flow would have queued a call by now
    assert kernel.value("(app.root.lr, app.root.epochs, len(app.root.learner.trained))") == before


def test_a_form_on_a_running_work_reaches_the_work(kernel):
    assert _eventually(kernel, "app.root.pacer.seen_speed", 1.0) == 1.0
    model_id = _form(kernel, 'ParamsForm(app.root.pacer, ["speed"])')
    assert kernel.widget_state(model_id)["values"] == {"speed": 1.0}
    start = kernel.mark()
    kernel.widget_custom(model_id, {"type": "submit", "values": {"speed": "3"}})
    _status_after(kernel, model_id, start, ("applied",))
    # The work (on a worker process) read the new value and reported it back.
    assert _eventually(kernel, "app.root.pacer.seen_speed", 3.0) == 3.0


TYPE_AND_APPLY = """
const field = (name) => [...el.querySelectorAll(".lnb-field")].find((f) => f.textContent.startsWith(name));
const input = (name) => field(name).querySelector("input, select");
const lr = input("lr");
lr.value = "abc";
lr.dispatchEvent(new Event("input"));
el.querySelector("button[type=submit]").click();
return null;
"""

SHOWN = """
return [...el.querySelectorAll(".lnb-field")].map((field) => ({
  label: field.firstChild.textContent, value: field.querySelector("input, select").value,
  current: field.querySelector(".lnb-current").textContent, error: field.querySelector(".lnb-field-error").textContent,
})).concat([{ status: el.querySelector(".lnb-status").textContent }]);
"""


def test_the_form_in_a_browser_sends_what_was_typed_and_shows_the_errors(kernel):
    from browser import render, widget_states

    model_id = _form(kernel, 'ParamsForm(app.root, ["lr", "epochs"], ranges={"lr": (0, 1)})')
    report = render("params.js", widget_states(kernel, model_id), TYPE_AND_APPLY)
    (message,) = report["sent"]
    assert message["type"] == "submit" and message["values"]["lr"] == "abc"

    start = kernel.mark()
    kernel.widget_custom(model_id, message)  # what the browser sent, as it sent it
    _status_after(kernel, model_id, start, ("invalid",))
    fields = render("params.js", widget_states(kernel, model_id), SHOWN)["result"]
    lr, epochs, status = fields
    assert lr["label"] == "lr (≥ 0, ≤ 1)" and lr["error"] == "'abc' is not a number"
    assert lr["current"] == f"now: {kernel.value('app.root.lr')}"
    assert epochs["error"] == "" and epochs["value"] == str(kernel.value("app.root.epochs"))
    assert status["status"].startswith("nothing was changed: lr: 'abc' is not a number")


def test_a_submission_on_a_subshell_applies_while_a_cell_blocks(kernel):
    """JupyterLab ≥ 4.4 sends widget messages on a subshell: the form is handled at once, not after the cell."""
    model_id = _form(kernel, 'ParamsForm(app.root, ["epochs"])')
    subshell = kernel.subshell()
    blocking = kernel.submit("time.sleep(8)")
    kernel.wait_for(lambda m: m["parent_header"].get("msg_id") == blocking and m["msg_type"] == "execute_input",
                    30, what="the blocking cell to start")
    start = kernel.mark()
    kernel.widget_custom(model_id, {"type": "submit", "values": {"epochs": "9"}}, subshell)
    applied = kernel.wait_for(lambda m: m["content"].get("comm_id") == model_id and
                              m["content"].get("data", {}).get("state", {}).get("status", {}).get("state") == "applied",
                              30, since=start, what="the form applied")
    done = kernel.finish(blocking)
    idle = done.messages[-1]
    assert applied["received"] < idle["received"] - 2, "the submission waited for the blocking cell"
    assert kernel.value("app.root.epochs") == 9
