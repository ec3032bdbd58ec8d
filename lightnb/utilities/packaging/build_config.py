"""``BuildConfig``: importable for ported apps; lightnb builds no images, so creating one warns and it is
ignored (install the requirements on the Dask workers)."""

from __future__ import annotations

from ...core.unsupported import BUILD_CONFIG, unsupported_class

BuildConfig = unsupported_class("BuildConfig", __name__, BUILD_CONFIG)

__all__ = ["BuildConfig"]
