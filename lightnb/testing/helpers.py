"""``EmptyFlow`` and ``EmptyWork``, as in the reference's ``lightning.app.testing.helpers``."""

from __future__ import annotations

from typing import Any

from ..core.flow import LightningFlow
from ..core.work import LightningWork


class EmptyFlow(LightningFlow):
    """A flow that does nothing (a root or child placeholder in tests)."""

    def run(self, *args: Any, **kwargs: Any) -> None:
        pass


class EmptyWork(LightningWork):
    """A work that does nothing (its call succeeds at once)."""

    def run(self, *args: Any, **kwargs: Any) -> None:
        pass


__all__ = ["EmptyFlow", "EmptyWork"]
