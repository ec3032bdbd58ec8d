"""Where things live in the app's storage, and which paths may be used there. Pure: no I/O.

Layout under the storage root (a local folder or any fsspec URL)::

    drives/<drive name>/<component name>/<path>    files put in a Drive, one namespace per component
    apps/<app id>/paths/<work name>/<path key>     a work's Paths, kept once its call succeeded
    apps/<app id>/payloads/<digest>.pkl            large Payload values

Paths given by users are checked here: a drive path must be relative and stay inside the drive.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any
from urllib.parse import quote, unquote

DRIVE_SCHEME = "lit://"
_DRIVE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
# Temporary files of atomic writes: ".<name>.<random>.lightnb-tmp", hidden from listings.
TMP_SUFFIX = ".lightnb-tmp"


class UnsafePathError(ValueError):
    """A path that would leave the drive (``..``, an absolute path, a symbolic link out of it)."""


def drive_name(drive_id: str) -> str:
    """The name in ``lit://name``; ``ValueError`` saying what a drive id looks like otherwise."""
    if not isinstance(drive_id, str):
        raise TypeError(f"a Drive id is a string such as 'lit://models', not {type(drive_id).__name__}")
    if not drive_id.startswith(DRIVE_SCHEME):
        scheme = drive_id.split("://")[0] + "://" if "://" in drive_id else None
        hint = (f" A drive lives in the app's storage: to keep it in {scheme} give the storage URL to the "
                f"app, LightningApp(root, storage={drive_id!r})." if scheme else "")
        raise ValueError(f"Drive({drive_id!r}): a drive id starts with 'lit://', e.g. Drive('lit://models')."
                         + hint)
    name = drive_id[len(DRIVE_SCHEME):]
    if not _DRIVE_NAME.match(name):
        raise ValueError(f"Drive({drive_id!r}): the name after 'lit://' must be one word of letters, digits, "
                         "'_', '-' or '.' (no '/'), e.g. 'lit://models'")
    return name


def safe_relative(path: Any, where: str, allow_root: bool = False) -> str:
    """``path`` as a normalized relative POSIX path (``"."`` for the root when ``allow_root``).

    Raises :class:`UnsafePathError` naming the path if it is absolute or goes up with ``..``: what a
    drive holds must stay inside it.

    >>> safe_relative("models/./best.ckpt", "drive lit://x")
    'models/best.ckpt'
    """
    try:
        text = os.fspath(path)
    except TypeError:
        raise TypeError(f"a path in {where} is a str or path-like object, not {type(path).__name__}") \
            from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    # Backslashes count as separators: a worker on Windows would read them so.
    posix = text.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise UnsafePathError(f"{text!r} is an absolute path; paths in {where} are relative to it "
                              "(e.g. 'models/best.ckpt')")
    parts = [part for part in posix.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"{text!r} goes up with '..' and would leave {where}; use a path inside it "
                              "(e.g. 'models/best.ckpt')")
    if not parts:
        if allow_root:
            return "."
        raise UnsafePathError(f"{text!r} names the whole of {where}; name a file or folder in it")
    return "/".join(parts)


def join(*parts: str) -> str:
    """Join key parts, dropping ``"."``."""
    return "/".join(part for part in parts if part and part != ".")


def component_dir(component_name: str) -> str:
    """A component's name as one path segment (dotted names such as ``root.train`` stay readable)."""
    if component_name in (".", ".."):
        return component_name.replace(".", "%2E")
    if _PLAIN_NAME.match(component_name):
        return component_name
    return quote(component_name, safe="")


def component_from_dir(segment: str) -> str:
    return unquote(segment)


def drive_key(name: str, component_name: str | None = None, relative: str = ".") -> str:
    if component_name is None:
        return join("drives", name)
    return join("drives", name, component_dir(component_name), relative)


def path_key(app_id: str, work_name: str, path_text: str) -> str:
    """Where a work's Path is kept: its relative path, or for an absolute one a digest of it and its name."""
    try:
        relative = safe_relative(path_text, "a work's folder")
    except UnsafePathError:
        digest = hashlib.sha1(path_text.encode()).hexdigest()[:16]
        base = os.path.basename(path_text.rstrip("/\\")) or "root"
        relative = f"{digest}/{quote(base, safe='')}"
        return join("apps", app_id, "paths", component_dir(work_name), "abs", relative)
    return join("apps", app_id, "paths", component_dir(work_name), "rel", relative)


def payload_key(app_id: str, digest: str) -> str:
    return join("apps", app_id, "payloads", f"{digest}.pkl")


def is_temporary(name: str) -> bool:
    """A leftover of an atomic write in progress (or interrupted): never shown."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def temporary_name(name: str, token: str) -> str:
    return f".{name}.{token}{TMP_SUFFIX}"
