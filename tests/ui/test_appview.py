"""AppView in a real kernel, with works on a real Dask cluster: what the view's widget really sends."""

from __future__ import annotations

import textwrap

import pytest
from kernel_session import KernelSession, appview_timeline, wait_appview

APPS = textwrap.dedent('''
    import time
    from lightnb import LightningApp, LightningFlow, LightningWork
    from lightnb.runtime.cluster import start_local_cluster

    cluster = start_local_cluster(n_workers=2)

    class Steps(LightningWork):
        def __init__(self, n, fail=False):
            super().__init__(parallel=True, raise_exception=False)
            self.n = n
            self.fail = fail
            self.progress = 0.0

        def run(self):
            for i in range(self.n):
                time.sleep(0.25)
                self.progress = (i + 1) / self.n
                print(f"step {i + 1} of {self.n}")
            if self.fail:
                raise ValueError("boom at the end")

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.good = Steps(12)
            self.bad = Steps(4, fail=True)

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


def _view_of(kernel: KernelSession, code: str) -> tuple[str, object]:
    start = kernel.mark()
    run = kernel.execute(code)
    assert run.ok, run.text
    ids = kernel.widget_ids("AppView", start)
    assert len(ids) == 1, run.text
    return ids[0], run


def _final(kernel: KernelSession, model_id: str, stage: str, timeout: float = 90):
    return wait_appview(kernel, model_id, lambda header, _: header.get("stage") == stage, timeout,
                        f"the view showing the app {stage}")


def test_the_view_updates_while_a_cell_blocks(kernel):
    model_id, run = _view_of(kernel, "app = LightningApp(Root(), cluster=cluster)\napp.start()\napp")
    assert any("application/vnd.jupyter.widget-view+json" in data for data in run.displays)

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
    assert components["root"]["kind"] == "flow" and good["parent"] == "root"


def test_updates_carry_only_what_changed(kernel):
    model_id, _ = _view_of(kernel, "app = LightningApp(Root(), cluster=cluster)\napp.start()\napp")
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
    model_id, _ = _view_of(kernel, "held = LightningApp(Holder(), cluster=cluster)\nheld.start()\nheld")
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
    model_id, _ = _view_of(kernel, "quick = LightningApp(Root(), cluster=cluster)\nquick.start()\nquick")
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
    model_id, _ = _view_of(kernel, "%load_ext lightnb\nagain = LightningApp(Holder(), cluster=cluster)\n"
                                   "%lightnb run again")
    first = kernel.value("again.app_id")
    header, _ = wait_appview(kernel, model_id, lambda _, c: c.get("root.w", {}).get("stage") == "running",
                             what="the work running")
    assert kernel.widget_state(model_id)["can_restart"] is True and header["id"] == first

    kernel.widget_custom(model_id, {"type": "restart"})
    header, components = wait_appview(
        kernel, model_id, lambda h, c: h["id"] != first and c.get("root.w", {}).get("stage") == "running",
        90, "the view showing the restarted app")
    assert kernel.value("again.app_id") == header["id"]  # the notebook's name follows the fresh copy
    running = kernel.value("[a.app_id for a in __import__('lightnb').core.app.running_apps()]")
    assert first not in running and header["id"] in running
    kernel.execute("%lightnb stop again")
