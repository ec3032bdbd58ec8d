"""The Panel script of a ``PanelFrontend`` made from a function: ``render_fn(state)`` returns what to show,
drawn again (with a fresh ``AppState``) when the app's state changed, as the page polls the app — not for a
change the page's own widgets wrote through that state (it shows it already; see ``streamlit_page``)."""

from __future__ import annotations

import os

import panel as pn

from lightnb.frontend.launch import load_render_fn
from lightnb.utilities.state import AppState, AppStateError

REFRESH_MS = int(1000 * float(os.environ.get("LIGHTNB_PANEL_REFRESH") or 0.5))

render_fn = load_render_fn(os.environ["LIGHTNB_RENDER_FN"])
state = AppState()
state._request_state()
shown = [state]  # the state the page draws: its version moves on with the page's own writes
page = pn.Column(pn.panel(render_fn(state)), sizing_mode="stretch_width")


def follow() -> None:
    try:
        now = state._connection.version()
        if now == shown[0]._version:
            return
        fresh = AppState()
        fresh._request_state()
    except AppStateError:
        return
    shown[0] = fresh
    page.objects = [pn.panel(render_fn(fresh))]


pn.state.onload(lambda: pn.state.add_periodic_callback(follow, period=REFRESH_MS))
page.servable()
