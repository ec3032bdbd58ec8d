"""The Panel script of a ``PanelFrontend`` made from a function: ``render_fn(state)`` returns what to show."""

from __future__ import annotations

import os

import panel as pn

from lightnb.frontend.launch import load_render_fn
from lightnb.utilities.state import AppState

pn.panel(load_render_fn(os.environ["LIGHTNB_RENDER_FN"])(AppState())).servable()
