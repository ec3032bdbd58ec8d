"""Web frontends of a flow, as in Lightning: ``configure_layout()`` returns a ``StreamlitFrontend(render_fn)``,
a ``StaticWebFrontend(folder)`` or a ``PanelFrontend(entry_point)`` (alone, or as a tab's ``content``).

The app serves each on 127.0.0.1 while it runs (started with the app, stopped when it ends) and shows it as a
tab of its view, through the notebook server's proxy when there is one. The page reads and sets the flow's
state through :class:`lightnb.utilities.state.AppState`.
"""

from .base import Frontend
from .panel import PanelFrontend
from .runner import RunningFrontend, app_state, running_frontends
from .streamlit import StreamlitFrontend
from .web import StaticWebFrontend

__all__ = ["Frontend", "PanelFrontend", "RunningFrontend", "StaticWebFrontend", "StreamlitFrontend",
           "app_state", "running_frontends"]
