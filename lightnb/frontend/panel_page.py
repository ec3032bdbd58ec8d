"""The Panel script of a ``PanelFrontend`` made from a function: ``render_fn(state)`` returns what to show,
drawn again (with a fresh ``AppState``) when the app's state changed, as the page polls the app."""

from __future__ import annotations

import os

import panel as pn

from lightnb.frontend.launch import load_render_fn
from lightnb.utilities.state import AppState, AppStateError

REFRESH_MS = int(1000 * float(os.environ.get("LIGHTNB_PANEL_REFRESH") or 0.5))

render_fn = load_render_fn(os.environ["LIGHTNB_RENDER_FN"])
state = AppState()
state._request_state()
seen = [state._version]
page = pn.Column(pn.panel(render_fn(state)), sizing_mode="stretch_width")


def follow() -> None:
    try:
        now = state._connection.version()
        if now == seen[0]:
            return
        fresh = AppState()
        fresh._request_state()
    except AppStateError:
        return
    seen[0] = fresh._version
    page.objects = [pn.panel(render_fn(fresh))]


pn.state.onload(lambda: pn.state.add_periodic_callback(follow, period=REFRESH_MS))
page.servable()
