"""The Streamlit script of a ``StreamlitFrontend`` (``streamlit run`` runs this file): load the flow's
render function once, call it with a fresh ``AppState`` on every rerun, and rerun when the app's state
changed, so the page shows the live state — but not for a change the page made itself (a click that sets
``state.lr``): that full rerun half a second later could swallow the person's next click. The flow's answer
to the page's write is a later version, so the page still draws it."""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from lightnb.frontend.launch import load_render_fn
from lightnb.utilities.state import AppState, AppStateError

RENDER_FN = "LIGHTNB_RENDER_FN"
REFRESH = float(os.environ.get("LIGHTNB_STREAMLIT_REFRESH") or 0.5)  # seconds between looks at the app


def _render_fn() -> Any:
    return load_render_fn(os.environ[RENDER_FN])  # once per process: this script runs again on every rerun


def main() -> None:
    state = AppState()
    try:
        state._request_state()
    except AppStateError as error:
        st.error(f"lightnb: {error}")
        return
    _render_fn()(state)

    @st.fragment(run_every=REFRESH)
    def follow() -> None:
        try:
            now = state._connection.version()
        except AppStateError:
            return
        if now != state._version:  # read now: the page's own writes (in fragments too) move it on
            st.rerun()

    follow()


main()
