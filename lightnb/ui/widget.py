"""Base of lightnb's widgets: anywidgets that only the UI pump writes once built.

The browser never writes their traits; it sends messages (``model.send({...})`` in the ESM), handled
here by *enqueueing* work — the handler may run on the kernel's main thread or on a subshell thread
(ipykernel 7), and must not block either. A state request (a page reload) is answered by the pump too,
so the widget has exactly one writer.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import anywidget

from .comm import answer_where_sent
from .pump import pump

STATIC = Path(__file__).parent / "static"


# The libraries each widget module uses, from static/vendor/ (their versions and licenses are noted there).
VENDOR: dict[str, tuple[str, ...]] = {"appview.js": ("ansi_up.js", "uPlot.iife.min.js")}


def esm(module: str) -> str:
    """The ES module of a widget: the ``static/vendor/`` libraries it uses (ES modules whose exports become
    top-level names), ``static/common.js`` (shared helpers), then ``static/<module>`` — one string, as
    anywidget loads a module from a string and it cannot import a sibling file."""
    parts = [(STATIC / "vendor" / name).read_text() for name in VENDOR.get(module, ())]
    parts += [(STATIC / "common.js").read_text(), (STATIC / module).read_text()]
    return "\n".join(parts)


class PumpedWidget(anywidget.AnyWidget):  # type: ignore[misc]
    """An anywidget whose traits only the UI pump writes after construction."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        answer_where_sent(self.comm)

    def _handle_msg(self, msg: dict[str, Any]) -> None:
        data = msg.get("content", {}).get("data", {})
        method = data.get("method")
        if method == "request_state":
            pump().call(self.resend)
        elif method == "custom":
            content = data.get("content")
            if isinstance(content, dict):
                try:
                    self.on_message(content)
                except Exception:
                    traceback.print_exc(file=sys.__stderr__)
        # "update" from a front end is ignored: the browser owns no trait of these widgets.

    def resend(self) -> None:
        """Send the whole state again (pump thread)."""
        if self.comm is not None:
            self.send_state()

    def on_message(self, content: dict[str, Any]) -> None:
        """A message from the browser; override, and only enqueue (``pump().call``, the app's loop)."""
