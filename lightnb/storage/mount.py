"""``Mount``: importable for ported apps; lightnb mounts no cloud storage, so creating one says what to use."""

from __future__ import annotations

from ..core.unsupported import MOUNT, unsupported_class

Mount = unsupported_class("Mount", "lightnb.storage", MOUNT)

__all__ = ["Mount"]
