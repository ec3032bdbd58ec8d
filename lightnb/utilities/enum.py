"""``lightning.app.utilities.enum`` under lightnb: the stages of an app and of a work.

``AppStage.STOPPING`` is the reference's name for an app that ended cleanly; in lightnb it is the same member
as ``AppStage.STOPPED`` (``"stopped"``), so ``app.stage == AppStage.STOPPING`` holds after a clean end.
"""

from __future__ import annotations

from ..core.calls import WorkStageStatus
from ..core.events import AppStage

__all__ = ["AppStage", "WorkStageStatus"]
