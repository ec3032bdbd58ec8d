"""The app's storage: an fsspec location (a local folder, ``s3://...``) and the few operations on it that
drives, paths and payloads need.

Every write is atomic: on a local folder the bytes go to a hidden temporary file next to the target which is
then renamed over it; on an object store (S3, GCS, Azure) an object only appears once its upload completed.
A reader never sees a torn file, even when two works write the same name at once (the last rename wins).

Bytes are streamed: local copies use the kernel's copy (``sendfile``), uploads and downloads go in bounded
chunks, so a file of any size moves without being loaded into memory. On one machine a file got from a local
storage folder on the same disk is a hard link to the stored copy instead of a copy; stored files are
read-only, so that copy is not edited in place by mistake (set ``LIGHTNB_STORAGE_LINKS=0`` to always copy).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import stat
import sys
import uuid
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from ..runtime import context
from . import keys
from .keys import UnsafePathError

LINKS_ENV = "LIGHTNB_STORAGE_LINKS"
MACHINE_ENV = "LIGHTNB_MACHINE_ID"
# Object stores publish an object only once written: no temporary name needed.
_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "memory"})
# Bounded chunks for s3fs (its defaults hold up to 10 x 50 MiB of a file in memory; this ~2 x 20 MiB).
_S3_CHUNK = 5 * 2**20  # the smallest part S3 accepts
_S3_CONCURRENCY = 4
_S3_MAX_PARTS = 9000


def storage_url(hint: str | None = None, component: Any = None) -> str:
    """The storage root to use here: the running app's (on its loop thread and in its works), else ``hint``
    (recorded where the app was known), else the app holding ``component``, else the default."""
    current = context.current()
    if current is not None and current.storage:
        return current.storage
    if hint:
        return hint
    if component is not None:
        found = _app_storage_of(component)
        if found:
            return found
    return context.resolve_storage(None)


def current_app_id(hint: str | None = None) -> str | None:
    current = context.current()
    return current.app_id if current is not None else hint


# The storage root of the app a component belongs to (in the kernel, where no AppContext is current): the
# layer that knows apps (lightnb.app) registers how to find it.
_storage_lookups: list[Callable[[Any], str | None]] = []


def register_storage_lookup(lookup: Callable[[Any], str | None]) -> None:
    """``lookup(root_component)`` gives the storage root URL of the app whose root it is, or ``None``."""
    _storage_lookups.append(lookup)


def _app_storage_of(component: Any) -> str | None:
    root = component.root
    for lookup in _storage_lookups:
        found = lookup(root)
        if found:
            return found
    return None


# -- where this process is -------------------------------------------------------------------------------
@functools.cache
def _filesystem_view() -> str:
    """Processes that see the same files share this: the host, its boot, and the mount namespace (containers
    on one host see different files)."""
    parts = [socket.gethostname()]
    for source in ("/proc/sys/kernel/random/boot_id",):
        try:
            with open(source) as file:
                parts.append(file.read().strip())
        except OSError:
            pass
    try:
        parts.append(os.readlink("/proc/self/ns/mnt"))
    except OSError:
        pass
    return ":".join(parts)


def machine_id() -> str:
    """Identifies the file system this process sees (``$LIGHTNB_MACHINE_ID`` overrides it)."""
    return os.environ.get(MACHINE_ENV) or _filesystem_view()


def worker_address() -> str | None:
    """The address of the Dask worker this thread runs a task for, if any."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ValueError, AttributeError):
        return None


def links_allowed() -> bool:
    return os.environ.get(LINKS_ENV, "1").lower() not in ("0", "false", "no")


# -- local files -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def replacing(target: str) -> Iterator[str]:
    """A temporary path beside ``target`` to write; renamed over ``target`` when the block succeeds (readers see
    the old file or the new one, never part of it), removed when it fails."""
    folder = os.path.dirname(target) or "."
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, keys.temporary_name(os.path.basename(target), uuid.uuid4().hex[:12]))
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def place_file(source: str, target: str, *, link: bool = False, readonly: bool = False,
               keep_mtime: bool = False) -> None:
    """Make ``target`` a copy (or, with ``link``, a hard link when possible) of ``source``, atomically."""
    if os.path.exists(target) and os.path.samefile(source, target):
        return
    with replacing(target) as temporary:
        if link and links_allowed():
            try:
                os.link(source, temporary)
                return
            except OSError:  # another disk, a file system without hard links, protected links
                pass
        shutil.copyfile(source, temporary)  # sendfile: the kernel moves the bytes
        if keep_mtime:
            info = os.stat(source)
            os.utime(temporary, ns=(info.st_atime_ns, info.st_mtime_ns))
        if readonly:
            os.chmod(temporary, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def place_tree(source: str, target: str, **options: Any) -> None:
    """:func:`place_file` for a file, or for every file of a folder (each one atomically)."""
    if not os.path.isdir(source):
        place_file(source, target, **options)
        return
    for relative in local_files(source):
        place_file(os.path.join(source, relative), os.path.join(target, relative), **options)
    os.makedirs(target, exist_ok=True)


def local_files(folder: str) -> Iterator[str]:
    """Relative paths of the files under ``folder`` (temporary files of writes in progress left out)."""
    for directory, _, names in os.walk(folder):
        for name in names:
            if not keys.is_temporary(name):
                yield os.path.relpath(os.path.join(directory, name), folder)


def unchanged(source: str, copy: str) -> bool:
    """Whether ``copy`` (made with ``keep_mtime``) still matches ``source``."""
    try:
        a, b = os.stat(source), os.stat(copy)
    except OSError:
        return False
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


# -- the store -------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def open_store(url: str) -> Store:
    return Store(url)


class Store:
    """The storage root at ``url``. Keys are relative POSIX paths (see :mod:`lightnb.storage.keys`)."""

    def __init__(self, url: str) -> None:
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.local = isinstance(self.fs, LocalFileSystem)
        self.root = os.path.abspath(root) if self.local else root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, (tuple, list)) else (self.fs.protocol,)
        self.object_store = bool(_OBJECT_STORES.intersection(protocols))
        self.s3 = bool({"s3", "s3a"}.intersection(protocols))

    def __repr__(self) -> str:
        return f"<Store {self.url}>"

    def location(self, key: str) -> str:
        return self.root if key in ("", ".") else (
            os.path.join(self.root, *key.split("/")) if self.local else f"{self.root}/{key}")

    def check_inside(self, key: str, base_key: str, what: str, shown: str) -> str:
        """The location of ``key``; on a local folder, refuse one that a symbolic link leads out of
        ``base_key`` (the drive's folder)."""
        location = self.location(key)
        if self.local:
            base = os.path.realpath(self.location(base_key))
            real = os.path.realpath(location)
            if real != base and not real.startswith(base + os.sep):
                raise UnsafePathError(f"{shown!r} leaves {what} through a symbolic link ({location} leads to "
                                      f"{real}); only paths inside the drive can be used")
        return location

    def _fresh(self) -> None:
        # Another process may have written since this process listed: never answer from a stale listing.
        if not self.local:
            self.fs.invalidate_cache()

    # -- reading ------------------------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        if self.local:
            return os.path.exists(self.location(key))
        self._fresh()
        return bool(self.fs.exists(self.location(key)))

    def is_dir(self, key: str) -> bool:
        if self.local:
            return os.path.isdir(self.location(key))
        self._fresh()
        return bool(self.fs.isdir(self.location(key)))

    def entries(self, key: str) -> list[tuple[str, bool]]:
        """One level under ``key``: ``(name, is_folder)`` pairs; ``[(name, False)]`` for a file."""
        location = self.location(key)
        if self.local:
            if not os.path.isdir(location):
                if os.path.exists(location):
                    return [(os.path.basename(location), False)]
                raise FileNotFoundError(location)
            with os.scandir(location) as found:
                return [(e.name, e.is_dir()) for e in found if not keys.is_temporary(e.name)]
        self._fresh()
        listed = self.fs.ls(location, detail=True)
        result = []
        for info in listed:
            name = info["name"].rstrip("/").rsplit("/", 1)[-1]
            if info["name"].rstrip("/") == location and info.get("type") != "directory":
                return [(name, False)]
            if not keys.is_temporary(name):
                result.append((name, info.get("type") == "directory"))
        return result

    def files(self, key: str) -> list[str]:
        """Relative paths of the files under ``key`` (``[""]`` when ``key`` is a file)."""
        location = self.location(key)
        if self.local:
            if os.path.isfile(location):
                return [""]
            return sorted(relative.replace(os.sep, "/") for relative in local_files(location))
        self._fresh()
        if self.fs.isfile(location):
            return [""]
        found = self.fs.find(location)
        prefix = location.rstrip("/") + "/"
        return sorted(path[len(prefix):] for path in found
                      if path.startswith(prefix) and not keys.is_temporary(path.rsplit("/", 1)[-1]))

    def read_bytes(self, key: str) -> bytes:
        self._fresh()
        with self.fs.open(self.location(key), "rb") as file:
            return file.read()

    # -- moving files -------------------------------------------------------------------------------------
    def upload(self, source: str, key: str, *, skip_unchanged: bool = False) -> None:
        """Store the local file or folder ``source`` under ``key`` (each file atomically)."""
        if os.path.isdir(source):
            for relative in local_files(source):
                target = keys.join(key, relative.replace(os.sep, "/"))
                self._upload_file(os.path.join(source, relative), target, skip_unchanged)
            if self.local:
                os.makedirs(self.location(key), exist_ok=True)
            return
        self._upload_file(source, key, skip_unchanged)

    def _upload_file(self, source: str, key: str, skip_unchanged: bool) -> None:
        target = self.location(key)
        if self.local:
            if skip_unchanged and unchanged(source, target):
                return
            # Stored files are never changed in place (a new version is a new file renamed over the old one)
            # and are read-only: a hard link to one handed out by `download` stays what was stored.
            place_file(source, target, readonly=True, keep_mtime=True)
            return
        options = self._transfer_options(os.path.getsize(source))
        if self.object_store:
            self.fs.put_file(source, target, **options)
        else:
            folder, _, name = target.rpartition("/")
            temporary = f"{folder}/{keys.temporary_name(name, uuid.uuid4().hex[:12])}"
            self.fs.put_file(source, temporary, **options)
            self.fs.mv(temporary, target)

    def stamps(self, key: str) -> dict[str, Hashable | None]:
        """The files under ``key`` (as :meth:`files`), each with a stamp that changes when the file is
        replaced: size, modification time and inode of a local file; size and ETag (or modification time)
        of an object."""
        location = self.location(key)
        if self.local:
            found = {}
            for relative in self.files(key):
                status = os.stat(os.path.join(location, *relative.split("/")) if relative else location)
                found[relative] = (status.st_size, status.st_mtime_ns, status.st_ino)
            return found
        self._fresh()
        if self.fs.isfile(location):
            return {"": _stamp(self.fs.info(location))}
        prefix = location.rstrip("/") + "/"
        return {path[len(prefix):]: _stamp(info) for path, info in self.fs.find(location, detail=True).items()
                if path.startswith(prefix) and not keys.is_temporary(path.rsplit("/", 1)[-1])}

    def download(self, key: str, target: str, inside: tuple[str, str] | None = None,
                 seen: dict[str, Hashable | None] | None = None) -> None:
        """Bring the stored file or folder ``key`` to the local ``target`` (each file atomically).
        ``inside=(base_key, what)`` refuses a file that a symbolic link leads out of ``base_key``. With
        ``seen`` (the stamps of the files brought before, updated here) a file unchanged since it was last
        brought, and still here, is not brought again."""
        stamps = self.stamps(key) if seen is not None else dict.fromkeys(self.files(key))
        for relative, stamp in sorted(stamps.items()):
            local = os.path.join(target, *relative.split("/")) if relative else target
            file_key = keys.join(key, relative) if relative else key
            if inside is not None:
                self.check_inside(file_key, inside[0], inside[1], file_key[len(inside[0]) + 1:])
            if stamp is not None and seen is not None and seen.get(file_key) == stamp and os.path.exists(local):
                continue
            self._download_file(file_key, local)
            if seen is not None:
                seen[file_key] = stamp
        if not self.local and self.is_dir(key):
            os.makedirs(target, exist_ok=True)

    def _download_file(self, key: str, target: str) -> None:
        source = self.location(key)
        if self.local:
            place_file(source, target, link=True)
            return
        with replacing(target) as temporary:
            self.fs.get_file(source, temporary, **self._transfer_options(None))

    def _transfer_options(self, size: int | None) -> dict[str, Any]:
        if not self.s3:
            return {}
        chunk = _S3_CHUNK if size is None else max(_S3_CHUNK, -(-size // _S3_MAX_PARTS))
        return {"chunksize": chunk, "max_concurrency": _S3_CONCURRENCY}

    def write_bytes(self, key: str, data: bytes) -> None:
        target = self.location(key)
        if self.local:
            with replacing(target) as temporary, open(temporary, "wb") as file:
                file.write(data)
            return
        self.fs.pipe_file(target, data)

    def remove(self, key: str) -> None:
        location = self.location(key)
        if self.local:
            if os.path.isdir(location) and not os.path.islink(location):
                shutil.rmtree(location)
            else:
                os.remove(location)
            return
        self.fs.rm(location, recursive=True)
        self._fresh()


def _stamp(info: dict[str, Any]) -> Hashable | None:
    """What tells a stored object's versions apart, from its fsspec ``info`` (keys differ by store): its
    content hash where the store keeps one (the same bytes put again are the same version), else its
    modification time."""
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    if etag is not None:
        return info.get("size"), str(etag)
    modified = next((info[name] for name in ("LastModified", "mtime", "last_modified", "updated", "created")
                     if info.get(name) is not None), None)
    if modified is None:
        return None  # nothing to tell versions apart: always bring the file
    return info.get("size"), str(modified)
