"""AppView in a real kernel, with works on a real Dask cluster: what the view's widget really sends."""

from __future__ import annotations

import textwrap

import pytest
from kernel_session import KernelSession, appview_timeline, wait_appview
from notebook_apps import PRELUDE

APPS = PRELUDE + textwrap.dedent('''
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.good = Steps(12, period=0.25)
            self.bad = Steps(4, period=0.25, fail=True)

        def run(self):
            self.good.run()
            self.bad.run()
            if self.good.has_succeeded and self.bad.has_failed:
                self.stop("both done")

    class Forever(LightningWork):
        def __init__(self):
            super().__init__(parallel=True)
            self.ticks = 0

        def run(self):
            while True:
                time.sleep(0.1)
                self.ticks += 1

    class Holder(LightningFlow):
        def __init__(self):
            super().__init__()
            self.w = Forever()

        def run(self):
            self.w.run()
''')


@pytest.fixture(scope="module")
def kernel():
    with KernelSession() as session:
        setup = session.execute(APPS)
        assert setup.ok, setup.text
        yield session
        session.execute("cluster.close()")


def _final(kernel: KernelSession, model_id: str, stage: str, timeout: float = 90):
    return wait_appview(kernel, model_id, lambda header, _: header.get("stage") == stage, timeout,
                        f"the view showing the app {stage}")


def test_the_view_updates_while_a_cell_blocks(kernel):
    start = kernel.mark()
    model_id = kernel.show("app = LightningApp(Root(), cluster=cluster)\napp.start()\napp", "AppView")
    assert any(m["msg_type"] == "execute_result" and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]
               for m in kernel.since(start)), "the app's rich display is its view"

    blocking = kernel.execute("time.sleep(6)")
    busy = next(m for m in blocking.messages if m["msg_type"] == "status"
                and m["content"]["execution_state"] == "busy")
    idle = blocking.messages[-1]
    timeline = appview_timeline(kernel.widget_states(model_id))
    during = [(message, header, components) for message, header, components in timeline
              if busy["received"] <= message["received"] <= idle["received"]]
    assert len(during) >= 3, "the view did not update while the cell was blocked"
    progress = [components["root.good"]["progress"] for _, _, components in during]
    assert progress == sorted(progress) and len(set(progress)) >= 3, progress
    stages = {components["root.good"]["stage"] for _, _, components in during}
    assert "running" in stages, stages
    # Coalesced: at most 10 updates a second (with slack for the edges of the window).
    seconds = idle["received"] - busy["received"]
    assert len(during) <= 10 * seconds + 3, (len(during), seconds)

    header, components = _final(kernel, model_id, "stopped")
    assert header["end_message"] == "both done"
    good, bad = components["root.good"], components["root.bad"]
    assert good["stage"] == "succeeded" and good["progress"] == 1.0
    assert good["logs"][-1] == "step 12 of 12"
    assert bad["stage"] == "failed" and "boom at the end" in bad["message"] and "ValueError" in bad["message"]
    # The work ran on a worker process, which has no copy of the notebook's cells: the source lines of its
    # traceback come from the kernel.
    assert '    raise ValueError("boom at the end")\n' in bad["message"]
    assert components["root"]["kind"] == "flow" and good["parent"] == "root"


def test_updates_carry_only_what_changed(kernel):
    model_id = kernel.show("app = LightningApp(Root(), cluster=cluster)\napp.start()\napp", "AppView")
    _final(kernel, model_id, "stopped")
    patches = [state["patch"]["changes"] for message, state in kernel.widget_states(model_id)
               if "patch" in message["content"].get("data", {}).get("state", {})]
    assert len(patches) >= 3
    for changes in patches:
        for name, change in changes.items():
            # Fixed fields of a known component are never sent again; only what moved is.
            assert change is not None and not {"class", "kind", "parent"} & change.keys(), (name, change)
    assert any(set(changes) == {"root.good"} for changes in patches)


def test_stop_buttons_stop_a_work_and_the_app(kernel):
    model_id = kernel.show("held = LightningApp(Holder(), cluster=cluster)\nheld.start()\nheld", "AppView")
    wait_appview(kernel, model_id, lambda _, c: c.get("root.w", {}).get("stage") == "running",
                 what="the work running")
    kernel.widget_custom(model_id, {"type": "stop_work", "work": "root.w"})
    header, components = wait_appview(kernel, model_id, lambda _, c: c["root.w"]["stage"] == "stopped",
                                      what="the work stopped")
    assert header["stage"] == "running"

    kernel.widget_custom(model_id, {"type": "stop_app"})
    header, _ = _final(kernel, model_id, "stopped")
    assert kernel.value("str(held.stage)") == "stopped"
    assert header["end_message"] == "stopped by the user"


def test_a_reloaded_page_gets_the_whole_state(kernel):
    model_id = kernel.show("quick = LightningApp(Root(), cluster=cluster)\nquick.start()\nquick", "AppView")
    _final(kernel, model_id, "stopped")
    start = kernel.mark()
    kernel.comm_msg(model_id, {"method": "request_state"})
    reply = kernel.wait_for(lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == model_id
                            and "components" in m["content"]["data"].get("state", {}),
                            30, since=start, what="the whole state")
    state = reply["content"]["data"]["state"]
    assert state["base_seq"] == state["patch"]["seq"]
    assert state["components"]["root.good"]["stage"] == "succeeded"
    assert state["header"]["stage"] == "stopped"


def test_restart_runs_a_fresh_copy_and_the_view_follows_it(kernel):
    model_id = kernel.show("%load_ext lightnb\nagain = LightningApp(Holder(), cluster=cluster)\n%lightnb run again",
                           "AppView")
    first = kernel.value("again.app_id")
    header, _ = wait_appview(kernel, model_id, lambda _, c: c.get("root.w", {}).get("stage") == "running",
                             what="the work running")
    assert kernel.widget_state(model_id)["can_restart"] is True and header["id"] == first

    kernel.widget_custom(model_id, {"type": "restart"})
    header, components = wait_appview(
        kernel, model_id, lambda h, c: h["id"] != first and c.get("root.w", {}).get("stage") == "running",
        90, "the view showing the restarted app")
    assert kernel.value("again.app_id") == header["id"]  # the notebook's name follows the fresh copy
    running = kernel.value("[a.app_id for a in __import__('lightnb.app').app.running_apps()]")
    assert first not in running and header["id"] in running
    kernel.execute("%lightnb stop again")


ROWS_PROBE = """
const text = (node, selector) => node.querySelector(selector).textContent;
const rows = [...el.querySelectorAll(".lnb-row")].map((row) => {
  const shown = (selector) => row.querySelector(selector).style.display !== "none" ? text(row, selector) : null;
  return { name: row.dataset.name, stage: text(row, ".lnb-stage-slot"), percent: shown(".lnb-percent"),
           error: shown(".lnb-error"), logs: shown(".lnb-logs-box") && text(row, ".lnb-logs") };
});
const header = { stage: text(el, ".lnb-app-stage"), title: text(el, ".lnb-title"), end: text(el, ".lnb-end") };
for (const button of el.querySelectorAll(".lnb-row button")) button.click();
for (const button of el.querySelectorAll(".lnb-header button")) button.click();
return { rows, header };
"""


def test_the_view_renders_in_a_browser(kernel):
    from browser import render, widget_states

    model_id = kernel.show("shown = LightningApp(Root(), cluster=cluster)\nshown.start()\nshown", "AppView")
    _final(kernel, model_id, "stopped")
    states = widget_states(kernel, model_id)
    assert len(states) > 5  # the opening state and the updates, applied one by one as a browser does
    report = render("appview.js", states, ROWS_PROBE)
    rows = {row["name"]: row for row in report["result"]["rows"]}
    assert list(rows) == ["root", "root.good", "root.bad"]
    assert rows["root"]["stage"] == "▾ flow"
    assert rows["root.good"]["stage"] == "✔ succeeded" and rows["root.good"]["percent"] == "100%"
    assert rows["root.good"]["logs"].splitlines()[-1] == "step 12 of 12"
    assert rows["root.bad"]["stage"] == "✖ failed" and "ValueError: boom at the end" in rows["root.bad"]["error"]
    assert report["result"]["header"] == {"stage": "■ stopped", "title": "Root", "end": "both done"}
    # The buttons send what the kernel's handlers read.
    assert {"type": "stop_work", "work": "root.good"} in report["sent"]
    assert {"type": "stop_app"} in report["sent"] and {"type": "restart"} in report["sent"]


def test_a_view_made_before_the_app_starts_follows_it(kernel):
    model_id = kernel.show("early = LightningApp(Holder(), cluster=cluster)\nfrom lightnb.ui import AppView\n"
                           "AppView(early)", "AppView")
    state = kernel.widget_state(model_id)
    assert state["header"]["stage"] == "not_started"
    assert state["components"]["root.w"]["stage"] == "not_started"
    kernel.execute("early.start()")
    wait_appview(kernel, model_id, lambda h, c: h["stage"] == "running" and c["root.w"]["stage"] == "running",
                 what="the view following the started app")
    kernel.execute("early.stop()")
    _final(kernel, model_id, "stopped")


NAMES_PROBE = """
return [...el.querySelectorAll(".lnb-row")].map((row) => ({
  name: row.dataset.name, shown: row.querySelector(".lnb-name").textContent,
  title: row.querySelector(".lnb-name").title }));
"""


def test_a_display_name_is_what_the_view_shows(kernel):
    from browser import render, widget_states

    model_id = kernel.show("named = LightningApp(Root(), cluster=cluster)\n"
                           "named.root.good.display_name = 'Good steps'\nnamed.start()\nnamed", "AppView")
    _final(kernel, model_id, "stopped")
    rows = {row["name"]: row for row in render("appview.js", widget_states(kernel, model_id), NAMES_PROBE)["result"]}
    assert rows["root.good"]["shown"] == "Good steps" and rows["root.good"]["title"] == "root.good"
    assert rows["root.bad"]["shown"] == "root.bad"  # no display name: the dotted name, as before
