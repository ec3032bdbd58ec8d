"""``lightning.app.utilities.warnings`` under lightnb: ``LightningFlowWarning`` is the warning about a flow whose
``run()`` holds up the app's loop (lightnb's ``SlowFlowWarning``), so a filter written for it keeps working."""

from __future__ import annotations

from ..core.flow import SlowFlowWarning

LightningFlowWarning = SlowFlowWarning

__all__ = ["LightningFlowWarning"]
