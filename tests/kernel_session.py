"""A real IPython kernel for tests, driven through jupyter_client the way a front end drives it.

Every IOPub message the kernel sends is recorded, so tests assert on what the kernel really sent: stream
output, display data, widget ``comm_open`` / ``comm_msg`` updates, comm messages of the ``lightnb`` target.
A test acts as the browser by sending ``comm_open`` / ``comm_msg`` on the shell channel.

>>> with KernelSession() as kernel:
...     run = kernel.execute("print(1 + 1)")
...     assert run.stdout == "2\\n"
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

REPO = Path(__file__).resolve().parent.parent
Message = dict[str, Any]


@dataclass
class Execution:
    """One executed cell: its reply and the IOPub messages it caused (up to its idle status)."""

    msg_id: str
    reply: Message
    messages: list[Message] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reply["content"]["status"] == "ok"

    def stream(self, name: str) -> str:
        return "".join(m["content"]["text"] for m in self.messages
                       if m["msg_type"] == "stream" and m["content"]["name"] == name)

    @property
    def stdout(self) -> str:
        return self.stream("stdout")

    @property
    def stderr(self) -> str:
        return self.stream("stderr")

    @property
    def displays(self) -> list[dict[str, Any]]:
        """The ``data`` of every display_data / execute_result."""
        return [m["content"]["data"] for m in self.messages
                if m["msg_type"] in ("display_data", "execute_result")]

    @property
    def text(self) -> str:
        """Everything shown as text: streams, text/plain of displays, error tracebacks."""
        parts = [self.stdout, self.stderr]
        parts += [d.get("text/plain", "") for d in self.displays]
        parts += ["\n".join(m["content"]["traceback"]) for m in self.messages if m["msg_type"] == "error"]
        return "\n".join(parts)

    @property
    def error(self) -> Message | None:
        return next((m for m in self.messages if m["msg_type"] == "error"), None)


class KernelSession:
    """A kernel started with this repository's lightnb first on the path."""

    def __init__(self, env: dict[str, str] | None = None, startup_timeout: float = 90) -> None:
        self.manager = KernelManager(kernel_name="python3")
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        # SIGUSR1 makes the kernel print its threads' stacks (to this process's stderr): a stuck cell explains
        # itself in the test report.
        dump = "import faulthandler, signal; faulthandler.register(signal.SIGUSR1, all_threads=True)"
        self.manager.start_kernel(env={**os.environ, "PYTHONPATH": path, **(env or {})}, cwd=str(REPO),
                                  extra_arguments=[f"--IPKernelApp.exec_lines={[dump]!r}",
                                                   "--HistoryManager.enabled=False"])
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=startup_timeout)
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._replies: dict[str, Message] = {}
        self._stopping = False
        self._reader = threading.Thread(target=self._read_iopub, daemon=True)
        self._reader.start()

    def __enter__(self) -> KernelSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # -- IOPub ------------------------------------------------------------------------------------------
    def _read_iopub(self) -> None:
        while not self._stopping:
            try:
                message = self.client.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            except Exception:
                if self._stopping:
                    return
                continue
            message["received"] = time.monotonic()
            with self._cond:
                self.messages.append(message)
                self._cond.notify_all()

    def mark(self) -> int:
        """A position in the message log, to look only at what came after it."""
        with self._cond:
            return len(self.messages)

    def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 60, since: int = 0,
                 what: str = "a matching message") -> Message:
        """The first IOPub message after ``since`` satisfying ``predicate``, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        index = since
        with self._cond:
            while True:
                while index < len(self.messages):
                    message = self.messages[index]
                    index += 1
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {what} within {timeout} s")
                self._cond.wait(remaining)

    def since(self, index: int) -> list[Message]:
        with self._cond:
            return list(self.messages[index:])

    # -- shell ------------------------------------------------------------------------------------------
    def execute(self, code: str, timeout: float = 120) -> Execution:
        """Run a cell and wait for its reply and its idle status; its IOPub messages are collected."""
        start = self.mark()
        msg_id = self.client.execute(code)
        try:
            reply = self._reply(msg_id, timeout)
        except TimeoutError:
            self.dump_stacks()
            raise
        self.wait_for(lambda m: m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "status"
                      and m["content"]["execution_state"] == "idle", timeout, start, "idle status")
        messages = [m for m in self.since(start) if m["parent_header"].get("msg_id") == msg_id]
        return Execution(msg_id, reply, messages)

    def submit(self, code: str) -> str:
        """Start a cell without waiting (e.g. a blocking one); returns its msg_id."""
        return self.client.execute(code)

    def finish(self, msg_id: str, timeout: float = 120) -> Execution:
        start = 0
        reply = self._reply(msg_id, timeout)
        self.wait_for(lambda m: m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "status"
                      and m["content"]["execution_state"] == "idle", timeout, start, "idle status")
        return Execution(msg_id, reply, [m for m in self.since(0) if m["parent_header"].get("msg_id") == msg_id])

    def _reply(self, msg_id: str, timeout: float) -> Message:
        deadline = time.monotonic() + timeout
        while msg_id not in self._replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {msg_id} within {timeout} s")
            try:
                message = self.client.get_shell_msg(timeout=remaining)
            except queue.Empty:
                continue
            self._replies[message["parent_header"].get("msg_id")] = message
        return self._replies.pop(msg_id)

    @property
    def pid(self) -> int:
        return self.manager.provisioner.process.pid  # type: ignore[union-attr]

    def dump_stacks(self) -> None:
        """Have the kernel print every thread's stack to stderr (shown with a failing test's output)."""
        try:
            os.kill(self.pid, signal.SIGUSR1)
            time.sleep(1)
        except (OSError, AttributeError):
            pass

    def value(self, expression: str) -> Any:
        """Evaluate ``expression`` in the kernel; its repr is parsed back with ``eval``."""
        run = self.execute(f"print(repr({expression}))")
        assert run.ok, run.text
        return eval(run.stdout.strip())  # a repr the test asked for

    # -- acting as the browser --------------------------------------------------------------------------
    def comm_open(self, target: str, data: dict[str, Any] | None = None) -> str:
        comm_id = uuid.uuid4().hex
        self.client.shell_channel.send(self.client.session.msg(
            "comm_open", {"comm_id": comm_id, "target_name": target, "data": data or {}}))
        return comm_id

    def comm_msg(self, comm_id: str, data: dict[str, Any], subshell: str | None = None) -> None:
        """Send a comm message, on ``subshell`` if given (as JupyterLab ≥ 4.4 does with ipykernel 7)."""
        message = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        if subshell is not None:
            message["header"]["subshell_id"] = subshell
        self.client.shell_channel.send(message)

    def widget_custom(self, model_id: str, content: dict[str, Any], subshell: str | None = None) -> None:
        """What an anywidget's ``model.send(content)`` sends."""
        self.comm_msg(model_id, {"method": "custom", "content": content}, subshell)

    def subshell(self) -> str:
        """A new subshell of the kernel (ipykernel 7): its messages run on a thread of their own."""
        self.client.control_channel.send(self.client.session.msg("create_subshell_request", {}))
        reply = self.client.get_control_msg(timeout=30)
        assert reply["content"]["status"] == "ok", reply["content"]
        return reply["content"]["subshell_id"]

    def comm_data(self, comm_id: str, since: int = 0) -> list[Message]:
        return [m for m in self.since(since) if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id]

    # -- widgets ----------------------------------------------------------------------------------------
    def widget_ids(self, widget_class: str, since: int = 0) -> list[str]:
        """Model ids of the anywidgets of ``widget_class`` (e.g. ``"AppView"``) opened after ``since``."""
        return [m["content"]["comm_id"] for m in self.since(since)
                if m["msg_type"] == "comm_open" and m["content"].get("target_name") == "jupyter.widget"
                and str(m["content"]["data"]["state"].get("_anywidget_id", "")).endswith("." + widget_class)]

    def show(self, code: str, widget_class: str) -> str:
        """Run a cell that displays one ``widget_class`` widget; its model id."""
        start = self.mark()
        run = self.execute(code)
        assert run.ok, run.text
        ids = self.widget_ids(widget_class, start)
        assert len(ids) == 1, f"{len(ids)} {widget_class} widgets opened: {run.text}"
        return ids[0]

    def widget_states(self, model_id: str) -> list[tuple[Message, dict[str, Any]]]:
        """The widget's state after its opening and after each update: [(message, full state)]."""
        states: list[tuple[Message, dict[str, Any]]] = []
        state: dict[str, Any] = {}
        for message in self.since(0):
            content = message["content"]
            if content.get("comm_id") != model_id:
                continue
            if message["msg_type"] == "comm_open":
                state = dict(content["data"]["state"])
                states.append((message, dict(state)))
            elif message["msg_type"] == "comm_msg" and content["data"].get("method") == "update":
                state.update(content["data"]["state"])
                states.append((message, dict(state)))
        return states

    def widget_state(self, model_id: str) -> dict[str, Any]:
        states = self.widget_states(model_id)
        assert states, f"no widget {model_id}"
        return states[-1][1]

    # -- the end ----------------------------------------------------------------------------------------
    def shutdown(self, now: bool = False) -> None:
        self._stopping = True
        try:
            self.client.stop_channels()
        finally:
            if self.manager.is_alive():
                self.manager.shutdown_kernel(now=now)


def appview_timeline(states: list[tuple[Message, dict[str, Any]]]) -> list[tuple[Message, dict[str, Any],
                                                                                 dict[str, Any]]]:
    """What an AppView's browser code shows after each of its messages: ``[(message, header,
    components)]`` — the base revision, with each next patch applied (a gap in the patches fails)."""
    from lightnb.ui.model import apply_patch

    timeline = []
    base: int | None = None
    seq = -1
    components: dict[str, Any] = {}
    for message, state in states:
        if state.get("base_seq") != base:
            base = state["base_seq"]
            components = apply_patch(state.get("components", {}), {})
            seq = base
        patch = state.get("patch") or {"seq": 0, "changes": {}}
        if patch["seq"] == seq + 1:
            components = apply_patch(components, patch["changes"])
            seq = patch["seq"]
        elif patch["seq"] > seq + 1:
            raise AssertionError(f"the view skipped a patch: at {seq}, got {patch['seq']}")
        timeline.append((message, state.get("header", {}), components))
    return timeline


def wait_appview(kernel: KernelSession, model_id: str, predicate: Callable[[dict[str, Any], dict[str, Any]], bool],
                 timeout: float = 60, what: str = "the view to match") -> tuple[dict[str, Any], dict[str, Any]]:
    """Wait until the AppView ``model_id`` shows (as its browser code would) a ``(header, components)``
    satisfying ``predicate``; returns them."""
    deadline = time.monotonic() + timeout
    index = 0
    while True:
        timeline = appview_timeline(kernel.widget_states(model_id))
        if timeline and predicate(timeline[-1][1], timeline[-1][2]):
            return timeline[-1][1], timeline[-1][2]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            shown = timeline[-1][1:] if timeline else None
            raise TimeoutError(f"waited {timeout} s for {what}; the view shows {shown}")
        index = kernel.mark()
        try:
            kernel.wait_for(lambda m: m["content"].get("comm_id") == model_id, min(remaining, 5), since=index)
        except TimeoutError:
            pass
