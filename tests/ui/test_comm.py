"""The ``lightnb`` comm target, opened as the JupyterLab side panel opens it: snapshot, patches, commands."""

from __future__ import annotations

import textwrap

import pytest
from kernel_session import KernelSession
from notebook_apps import PRELUDE

from lightnb.ui.model import apply_patch

APPS = PRELUDE + textwrap.dedent('''
    class Pair(LightningFlow):
        def __init__(self):
            super().__init__()
            self.short = Steps(10)
            self.endless = Steps(10**6)

        def run(self):
            self.short.run()
            self.endless.run()
''')


@pytest.fixture(scope="module")
def kernel():
    with KernelSession() as session:
        # Before %load_ext lightnb the kernel has no such target: it closes the comm (the panel shows a hint).
        start = session.mark()
        comm_id = session.comm_open("lightnb", {"v": 1, "type": "hello"})
        session.wait_for(lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == comm_id, 30,
                         since=start, what="the comm closed by a kernel without lightnb")
        setup = session.execute("%load_ext lightnb\n" + APPS)
        assert setup.ok, setup.text
        yield session
        session.execute("cluster.close()")


class Panel:
    """What the side panel does with the comm: open it, keep the apps up to date, send commands."""

    def __init__(self, kernel: KernelSession) -> None:
        self.kernel = kernel
        self.start = kernel.mark()
        self.comm_id = kernel.comm_open("lightnb", {"v": 1, "type": "hello", "client": "test-panel"})
        self.apps: dict[str, dict] = {}
        self.seq = 0
        self.seen = 0
        self.acks: dict[str, dict] = {}
        self.events: list[dict] = []

    def read(self) -> list[dict]:
        """Apply every message received so far; returns them."""
        messages = [m["content"]["data"] for m in self.kernel.comm_data(self.comm_id, self.start)]
        new, self.seen = messages[self.seen:], len(messages)
        for data in new:
            assert data["v"] == 1
            if data["type"] in ("snapshot", "patch"):
                assert data["seq"] == self.seq + 1, "a gap in the kernel's numbering"
                self.seq = data["seq"]
            if data["type"] == "snapshot":
                self.apps = {app["id"]: app for app in data["apps"]}
            elif data["type"] == "patch":
                for app in data["apps"]:
                    known = self.apps.get(app["id"], {"components": {}})
                    self.apps[app["id"]] = {**known, **app,
                                            "components": apply_patch(known["components"], app["components"])}
                for app_id in data["removed"]:
                    self.apps.pop(app_id, None)
            elif data["type"] == "ack":
                self.acks[data["id"]] = data
            else:
                self.events.append(data)
        return new

    def until(self, predicate, timeout: float = 60, what: str = "the panel to show it"):
        import time

        deadline = time.monotonic() + timeout
        while True:
            self.read()
            if predicate(self):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for {what}; the panel has {self.apps}")
            try:
                self.kernel.wait_for(lambda m: m["content"].get("comm_id") == self.comm_id, 2,
                                     since=self.kernel.mark())
            except TimeoutError:
                pass

    def command(self, command_id: str, subshell: str | None = None, **fields) -> dict:
        self.kernel.comm_msg(self.comm_id, {"v": 1, "type": "cmd", "id": command_id, **fields}, subshell)
        self.until(lambda panel: command_id in panel.acks, what=f"the ack of {command_id}")
        return self.acks[command_id]


def _app_id(kernel: KernelSession, name: str) -> str:
    return kernel.value(f"{name}.app_id")


def test_snapshot_then_patches_as_the_app_runs(kernel):
    kernel.execute("pair = LightningApp(Pair(), cluster=cluster)")
    panel = Panel(kernel)
    app_id = _app_id(kernel, "pair")
    panel.until(lambda p: app_id in p.apps, what="the snapshot")
    first = panel.read() or []
    assert panel.seq >= 1
    assert panel.apps[app_id]["stage"] == "not_started"
    assert set(panel.apps[app_id]["components"]) == {"root", "root.short", "root.endless"}
    assert not first or all(m["type"] != "snapshot" for m in first)

    kernel.execute("pair.start()")
    panel.until(lambda p: p.apps[app_id]["components"]["root.short"]["stage"] == "succeeded",
                what="the short work to succeed")
    app = panel.apps[app_id]
    assert app["stage"] == "running" and app["name"] == "Pair"
    assert app["components"]["root.short"]["progress"] == 1.0
    assert app["components"]["root.endless"]["stage"] == "running"
    assert app["components"]["root.short"] == {
        "name": "root.short", "parent": "root", "kind": "work", "class": "Steps", "stage": "succeeded",
        "message": None, "progress": 1.0, "url": None, "port": None,
        "logs": [f"step {i} of 10" for i in range(1, 11)], "metrics": None, "view": None}


def test_commands_are_acknowledged_and_carried_out(kernel):
    kernel.execute("both = LightningApp(Pair(), cluster=cluster)\nboth.start()")
    panel = Panel(kernel)
    app_id = _app_id(kernel, "both")
    panel.until(lambda p: p.apps.get(app_id, {}).get("components", {}).get("root.endless", {}).get("stage")
                == "running", what="the endless work running")

    assert panel.command("c-1", cmd="stop_work", app=app_id, work="root.endless") == {
        "v": 1, "type": "ack", "id": "c-1", "ok": True, "error": None}
    panel.until(lambda p: p.apps[app_id]["components"]["root.endless"]["stage"] == "stopped",
                what="the work stopped")

    seq = panel.seq
    assert panel.command("c-2", cmd="refresh")["ok"] is True
    panel.until(lambda p: p.seq > seq, what="a fresh snapshot")
    assert any(m["type"] == "snapshot" for m in [m["content"]["data"] for m in
                                                  kernel.comm_data(panel.comm_id, panel.start)][1:])

    assert panel.command("c-3", cmd="stop_app", app=app_id)["ok"] is True
    panel.until(lambda p: p.apps[app_id]["stage"] == "stopped", what="the app stopped")
    assert panel.apps[app_id]["end_message"] == "stopped by the user"
    assert kernel.value("str(both.stage)") == "stopped"


def test_bad_commands_get_a_reason_and_unknown_messages_are_ignored(kernel):
    panel = Panel(kernel)
    panel.until(lambda p: p.seq >= 1, what="the snapshot")
    unknown = panel.command("c-4", cmd="dance")
    assert unknown["ok"] is False and "unknown command 'dance'" in unknown["error"]
    missing = panel.command("c-5", cmd="stop_app", app="no-such-app")
    assert missing["ok"] is False and "no app 'no-such-app'" in missing["error"]
    newer = panel.command("c-6", cmd="refresh", v=2)
    assert newer["ok"] is False and "protocol version 2 is newer" in newer["error"]
    kernel.comm_msg(panel.comm_id, {"v": 1, "type": "something-new"})
    assert panel.command("c-7", cmd="refresh")["ok"] is True  # still answering


def test_reveal_view_displays_the_app_in_the_notebook(kernel):
    kernel.execute("shown = LightningApp(Pair(), cluster=cluster)")
    panel = Panel(kernel)
    app_id = _app_id(kernel, "shown")
    start = kernel.mark()
    assert panel.command("c-8", cmd="reveal_view", app=app_id)["ok"] is True
    (model_id,) = kernel.widget_ids("AppView", start)
    assert kernel.widget_state(model_id)["header"]["id"] == app_id
    assert any(m["msg_type"] == "display_data" and
               m["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] == model_id
               for m in kernel.since(start) if m["msg_type"] == "display_data")


def test_lightnb_view_panel_asks_open_panels_to_reveal(kernel):
    panel = Panel(kernel)
    panel.until(lambda p: p.seq >= 1, what="the snapshot")
    run = kernel.execute("%lightnb view shown --panel")
    assert "side panel(s) to show" in run.stdout, run.text
    panel.until(lambda p: any(e["type"] == "reveal" for e in p.events), what="the reveal message")
    assert panel.events[-1] == {"v": 1, "type": "reveal", "app": _app_id(kernel, "shown")}


def test_a_command_on_a_subshell_is_carried_out_while_a_cell_blocks(kernel):
    kernel.execute("busy = LightningApp(Pair(), cluster=cluster)\nbusy.start()")
    panel = Panel(kernel)
    app_id = _app_id(kernel, "busy")
    panel.until(lambda p: p.apps.get(app_id, {}).get("stage") == "running", what="the app running")
    subshell = kernel.subshell()
    blocking = kernel.submit("time.sleep(8)")
    kernel.wait_for(lambda m: m["parent_header"].get("msg_id") == blocking and m["msg_type"] == "execute_input",
                    30, what="the blocking cell to start")
    assert panel.command("c-9", subshell, cmd="stop_app", app=app_id)["ok"] is True
    panel.until(lambda p: p.apps[app_id]["stage"] == "stopped", what="the app stopped")
    stopped_at = kernel.since(0)[-1]["received"]
    idle = kernel.finish(blocking).messages[-1]
    assert stopped_at < idle["received"] - 2, "the command waited for the blocking cell"
