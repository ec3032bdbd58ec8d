"""``lightning.app.utilities.packaging.cloud_compute`` under lightnb: the same ``CloudCompute``."""

from __future__ import annotations

from ...core.compute import CloudCompute

__all__ = ["CloudCompute"]
