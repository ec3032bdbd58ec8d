"""``Drive``: files shared among works, whichever worker or machine they run on."""

from __future__ import annotations

import os
import pathlib
import time
import weakref
from typing import Any

from ..core.values import StateValue
from . import keys
from .store import Store, open_store, storage_url


class Drive(StateValue):
    """A shared folder of files, kept in the app's storage: a work ``put``\\s a file, others ``get`` it.

    Each component writes in a namespace of its own (``put`` and ``delete`` act on the calling component's
    files); ``get`` and ``list`` see every component's files. A drive handed to several works — as a
    constructor argument or a run argument — is the same drive for all of them. Files live under the app's
    storage URL (``LightningApp(..., storage=...)``: a local folder by default, ``s3://...`` for workers that
    share no disk).

    Parameters
    ----------
    id:
        ``"lit://<name>"``.
    allow_duplicates:
        ``False`` (default): ``put`` refuses a path another component already holds.
    component_name:
        Pin the drive to this namespace instead of its owner's (several works then write the same files).
    root_folder:
        The local folder ``put`` reads from and ``get`` writes to (default: the current directory).

    Example
    -------
    >>> class Train(LightningWork):
    ...     def __init__(self, drive):
    ...         super().__init__()
    ...         self.drive = drive
    ...     def run(self):
    ...         pathlib.Path("model.pt").write_bytes(b"...")
    ...         self.drive.put("model.pt")          # into this work's namespace
    >>> class Serve(LightningWork):
    ...     def run(self, drive):
    ...         drive.get("model.pt")               # the one component holding it; now ./model.pt here
    """

    def __init__(self, id: str, allow_duplicates: bool = False, component_name: str | None = None,
                 root_folder: str | os.PathLike[str] | None = None) -> None:
        self.id = id
        self.name = keys.drive_name(id)
        self.allow_duplicates = bool(allow_duplicates)
        self.root_folder = os.fspath(root_folder) if root_folder is not None else None
        self._pinned = component_name
        self._owner: weakref.ref[Any] | None = None
        self._owner_name: str | None = None
        self._storage: str | None = None  # the app's storage, where it was known (for use outside the app)

    # -- the owner ------------------------------------------------------------------------------------------
    @property
    def component_name(self) -> str | None:
        """The namespace ``put`` and ``delete`` use: the component holding the drive (or the pinned one)."""
        if self._pinned is not None:
            return self._pinned
        owner = self._owner() if self._owner is not None else None
        return owner.name if owner is not None else self._owner_name

    def attach(self, component: Any, attribute: str) -> Drive:
        """Set as ``component.attribute``: a copy of the drive owned by that component."""
        if self._pinned is not None:
            return self
        drive = self._copy()
        drive._owner, drive._owner_name = weakref.ref(component), None
        return drive

    def before_call(self, work: Any, as_argument: bool) -> None:
        if as_argument and self._pinned is None:  # a drive received in run() belongs to that call's work
            self._owner, self._owner_name = None, work.name

    def to_state(self) -> dict[str, Any]:
        return {"type": "__drive__", "id": self.id, "component_name": self.component_name,
                "allow_duplicates": self.allow_duplicates}

    def _copy(self) -> Drive:
        drive = Drive.__new__(Drive)
        drive.__dict__.update(self.__dict__)
        return drive

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(self.__dict__, _owner=None, _owner_name=self.component_name,
                     _storage=self._store_url())
        return (_restore, (state,))

    def __repr__(self) -> str:
        owner = self.component_name
        return f"Drive({self.id!r}" + (f", component {owner}" if owner else "") + ")"

    # -- files ----------------------------------------------------------------------------------------------
    def put(self, path: str | os.PathLike[str]) -> None:
        """Copy the local file or folder ``root_folder/path`` into this component's namespace (atomically:
        readers see the previous version or the new one, never part of it)."""
        relative = keys.safe_relative(path, f"drive {self.id}")
        source = os.path.join(self._folder(), *relative.split("/"))
        if not os.path.exists(source):
            raise FileNotFoundError(f"cannot put {relative!r} into drive {self.id}: there is no file or "
                                    f"folder {source}")
        owner = self._require_owner("put")
        store = self._store()
        if not self.allow_duplicates:
            others = [c for c in self._holders(store, relative) if c != owner]
            if others:
                raise FileExistsError(
                    f"drive {self.id} already holds {relative!r} for {', '.join(others)}; {owner} cannot put "
                    f"a file of the same path. Use another path, or create the drive with "
                    f"Drive({self.id!r}, allow_duplicates=True) to let several components hold it.")
        store.upload(source, self._key(store, owner, relative))

    def get(self, path: str | os.PathLike[str], component_name: str | None = None,
            overwrite: bool = False, timeout: float | None = None) -> pathlib.Path:
        """Bring the file or folder ``path`` to ``root_folder/path`` here and return that local path.

        Without ``component_name`` exactly one component must hold ``path``. With ``timeout`` (seconds) a
        file no component has put yet is waited for, up to that long (another work may be about to put it);
        without, it must be there now (``FileNotFoundError``). An existing local file is replaced only with
        ``overwrite=True``. From a local storage folder on the same disk the file is a hard link to the
        stored copy, read-only: write a new file rather than editing it in place.
        """
        if timeout is None:
            return self._get(path, component_name, overwrite)
        if not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError(f"drive.get() timeout must be a number of seconds >= 0 or None, not {timeout!r}")
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            try:
                return self._get(path, component_name, overwrite)
            except FileNotFoundError as error:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FileNotFoundError(f"{error} (waited {timeout:g} s for it)") from None
                time.sleep(min(delay, left))  # polling the store: nothing tells us when another work puts it
                delay = min(delay * 1.5, 0.5)

    def _refresh(self, path: str, seen: dict[str, Any]) -> None:
        """``get(path, overwrite=True)``, bringing only the files changed since the last refresh with the
        same ``seen`` (so following a drive on an object store costs what changed, not the whole drive)."""
        self._get(path, None, True, seen)

    def _get(self, path: str | os.PathLike[str], component_name: str | None, overwrite: bool,
             seen: dict[str, Any] | None = None) -> pathlib.Path:
        relative = keys.safe_relative(path, f"drive {self.id}")
        store = self._store()
        holder = self._holder(store, relative, component_name)
        target = os.path.join(self._folder(), *relative.split("/"))
        if os.path.exists(target) and not overwrite:
            raise FileExistsError(f"{target} already exists; drive.get({relative!r}, overwrite=True) "
                                  f"replaces it with the copy {holder} put in drive {self.id}")
        store.download(self._key(store, holder, relative), target,
                       inside=(keys.drive_key(self.name), f"drive {self.id}"), seen=seen)
        return pathlib.Path(target)

    def _holder(self, store: Store, relative: str, component_name: str | None) -> str:
        """The component whose copy of ``relative`` to get: ``component_name``, or the only one holding it."""
        if component_name is not None:
            if not store.exists(self._key(store, component_name, relative)):
                holders = self._holders(store, relative)
                where = f" (it is held by {', '.join(holders)})" if holders else ""
                raise FileNotFoundError(f"drive {self.id} has no {relative!r} for component {component_name}"
                                        f"{where}")
            return component_name
        holders = self._holders(store, relative)
        if not holders:
            raise FileNotFoundError(self._missing(store, relative))
        if len(holders) > 1:
            raise ValueError(f"{relative!r} is held by several components of drive {self.id}: "
                             f"{', '.join(holders)}. Say which one: drive.get({relative!r}, "
                             f"component_name={holders[0]!r})")
        return holders[0]

    def list(self, path: str | os.PathLike[str] = ".", component_name: str | None = None) -> list[str]:
        """What ``path`` holds, one level deep like ``ls`` — across all components, or one — as paths
        relative to the drive (ready for :meth:`get`)."""
        relative = keys.safe_relative(path, f"drive {self.id}", allow_root=True)
        store = self._store()
        components = [component_name] if component_name is not None else self._components(store)
        found: set[str] = set()
        seen = False
        for component in components:
            key = self._key(store, component, relative)
            try:
                entries = store.entries(key)
            except FileNotFoundError:
                continue
            seen = True
            if len(entries) == 1 and not entries[0][1] and not store.is_dir(key):
                found.add(relative)
            else:
                found.update(keys.join(relative, name) for name, _ in entries)
        if not seen and relative != ".":
            owner = f" for component {component_name}" if component_name is not None else ""
            raise FileNotFoundError(f"drive {self.id} has no {relative!r}{owner}")
        return sorted(found)

    def delete(self, path: str | os.PathLike[str]) -> None:
        """Remove the file or folder ``path`` from this component's namespace (others' files stay)."""
        relative = keys.safe_relative(path, f"drive {self.id}")
        owner = self._require_owner("delete")
        store = self._store()
        key = self._key(store, owner, relative)
        if not store.exists(key):
            others = [c for c in self._holders(store, relative) if c != owner]
            hint = (f"; {', '.join(others)} hold(s) one, but a component deletes only its own files"
                    if others else "")
            raise FileNotFoundError(f"drive {self.id} has no {relative!r} for component {owner}{hint}")
        store.remove(key)

    # -- helpers --------------------------------------------------------------------------------------------
    def _folder(self) -> str:
        return self.root_folder if self.root_folder is not None else os.getcwd()

    def _store_url(self) -> str:
        owner = self._owner() if self._owner is not None else None
        return storage_url(self._storage, owner)

    def _store(self) -> Store:
        return open_store(self._store_url())

    def _require_owner(self, action: str) -> str:
        owner = self.component_name
        if owner is None:
            raise RuntimeError(
                f"drive {self.id} belongs to no component, so it has no namespace to {action} files in: set "
                "it as an attribute of a work or flow (self.drive = Drive(...)), pass it to a work's run(), "
                "or give component_name=...")
        return owner

    def _key(self, store: Store, component: str, relative: str) -> str:
        key = keys.drive_key(self.name, component, relative)
        store.check_inside(key, keys.drive_key(self.name), f"drive {self.id}", relative)
        return key

    def _components(self, store: Store) -> list[str]:
        base = keys.drive_key(self.name)
        try:
            entries = store.entries(base)
        except FileNotFoundError:
            return []
        components = []
        for name, is_dir in entries:
            if not is_dir:
                continue
            try:  # a component folder leading out of the drive (a planted link) is no component of it
                store.check_inside(keys.join(base, name), base, f"drive {self.id}", name)
            except keys.UnsafePathError:
                continue
            components.append(keys.component_from_dir(name))
        return sorted(components)

    def _holders(self, store: Store, relative: str) -> list[str]:
        return [c for c in self._components(store) if store.exists(self._key(store, c, relative))]

    def _missing(self, store: Store, relative: str) -> str:
        components = self._components(store)
        held = f"components with files in it: {', '.join(components)}" if components else "it is empty"
        return f"no component of drive {self.id} holds {relative!r} ({held}; storage {store.url})"


def _restore(state: dict[str, Any]) -> Drive:
    drive = Drive.__new__(Drive)
    drive.__dict__.update(state)
    return drive
