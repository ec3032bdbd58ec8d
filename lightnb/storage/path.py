"""``Path``: a file one work produces and others consume, wherever each of them runs."""

from __future__ import annotations

import os
import pathlib
import weakref
from dataclasses import dataclass
from typing import Any

from ..core.component import log_output
from ..core.values import LIT_PREFIX, StateValue, register_lit_path
from . import keys
from .store import Store, current_app_id, machine_id, open_store, place_tree, storage_url, worker_address


@dataclass(frozen=True)
class Source:
    """Where the producing work writes a Path: the file system it sees, the absolute path there, the Dask
    worker it runs on (to ask it for the file while its call still runs), and which file it was when the
    work last set the Path or succeeded (so that another file put at that path later is not taken for it)."""

    machine: str
    path: str
    worker: str | None = None
    stamp: tuple[int, int, int, int] | None = None

    @classmethod
    def here(cls, path: str) -> Source:
        return cls(machine_id(), path, worker_address(), _stamp(path))

    def local_file(self) -> str | None:
        """The producer's file, if this process sees it and it is still the one the producer made."""
        if self.machine != machine_id() or not os.path.exists(self.path):
            return None
        if self.stamp is not None and _stamp(self.path) != self.stamp:
            return None
        return self.path


def _stamp(path: str) -> tuple[int, int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


class Path(type(pathlib.Path()), StateValue):  # type: ignore[misc]
    """A ``pathlib.Path`` that one work produces (sets as an attribute) and other works consume.

    The consumer brings the file over with :meth:`get` — or automatically, when it receives the Path as a
    ``run()`` argument or holds it as an attribute: before its ``run()`` the file is fetched, whichever
    worker or machine made it. Once the producing call has succeeded, its Paths are kept in the app's storage,
    so they can be got even after the producer's file or worker is gone.

    Where the bytes come from, cheapest first: the producer's own file when it is on this machine (nothing
    moves when it is the very same file); the copy kept in the app's storage; the producer's worker, asked
    directly while its call still runs. A file brought from a local storage folder on the same disk is a
    read-only hard link to the kept copy.

    Example
    -------
    >>> class Train(LightningWork):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.checkpoint = None
    ...     def run(self):
    ...         torch.save(model, "model.pt")
    ...         self.checkpoint = Path("model.pt")
    >>> class Serve(LightningWork):
    ...     def run(self, checkpoint: Path):
    ...         model = torch.load(checkpoint)      # fetched before run() started
    >>> # in the flow: self.serve.run(self.train.checkpoint)
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], str) and args[0].startswith(LIT_PREFIX):
            # The reference's shared-storage paths: "lit://name" is name under the storage root folder.
            args = (lit_root(), args[0][len(LIT_PREFIX):], *args[1:])
        return super().__new__(cls, *args, **kwargs)

    # Class-level defaults: derived paths (``p.parent``, ``p / "x"``) are plain local paths with no origin.
    _origin: weakref.ref[Any] | None = None
    _origin_name: str | None = None
    _consumer_name: str | None = None
    _source: Source | None = None
    _app_id: str | None = None
    _storage: str | None = None

    # -- who made it ----------------------------------------------------------------------------------------
    @property
    def origin_name(self) -> str | None:
        """The name of the work that produced this path (``None`` if no work set it yet)."""
        origin = self._origin() if self._origin is not None else None
        return origin.name if origin is not None else self._origin_name

    @property
    def consumer_name(self) -> str | None:
        """The name of the latest work that received this path from another one."""
        return self._consumer_name

    def attach(self, component: Any, attribute: str) -> Path:
        """Set as an attribute of a work: that work is the origin unless another work made the path."""
        from ..core.work import LightningWork

        if not isinstance(component, LightningWork):
            return self
        path = self._copy()
        if self.origin_name is None or self._made_by(component):
            path._origin, path._origin_name = weakref.ref(component), None
            path._source = Source.here(os.path.abspath(self))
            path._app_id = current_app_id(self._app_id)
            path._storage = storage_url(self._storage) if path._app_id else self._storage
        else:  # another work's Path handed to this one: its origin is settled, keep it by name
            path._origin, path._origin_name = None, self.origin_name
            path._consumer_name = component.name
        return path

    def _made_by(self, work: Any) -> bool:
        origin = self._origin() if self._origin is not None else None
        return origin is work if origin is not None else self._origin_name == work.name

    def before_call(self, work: Any, as_argument: bool) -> None:
        if self.origin_name is None:
            return
        if self._made_by(work):
            if not as_argument:
                self._restamp(work)  # tell the flow where this work writes its Paths now
            return
        self._consumer_name = work.name
        if not self._fetch(overwrite=True):
            log_output(work, f"lightnb: {self} from {self.origin_name} was not fetched: it cannot be found "
                             f"yet ({self._where_looked()})\n", "stderr")

    def after_success(self, work: Any) -> None:
        """Keep the producing work's file in the app's storage once its call has succeeded."""
        if not self._made_by(work) or not os.path.exists(self):
            return
        kept = self._kept()
        if kept is not None:
            store, key = kept
            store.upload(os.path.abspath(self), key, skip_unchanged=True)
        if self._source is None or self._source != Source.here(os.path.abspath(self)):
            self._restamp(work)  # the flow learns which file this call made (sent before its final status)

    def _restamp(self, work: Any) -> None:
        for attribute, value in work._public_values().items():
            if value is self:
                setattr(work, attribute, self)

    def to_state(self) -> dict[str, Any]:
        return {"type": "__path__", "path": str(self), "origin_name": self.origin_name,
                "consumer_name": self._consumer_name}

    # -- getting it -----------------------------------------------------------------------------------------
    def get(self, overwrite: bool = False) -> None:
        """Bring the producing work's file (or folder) here, to this path.

        An existing different local file is replaced only with ``overwrite=True`` (``FileExistsError``
        otherwise); ``FileNotFoundError`` if the file cannot be found anywhere yet.
        """
        if self.origin_name is None:
            raise RuntimeError(f"{str(self)!r} has no origin: no work has set it as an attribute, so there "
                               "is nothing to get. A work makes a Path by setting it: self.out = Path(...)")
        if not self._fetch(overwrite):
            raise FileNotFoundError(f"{str(self)!r} of {self.origin_name} cannot be got: "
                                    f"{self._where_looked()}. The producing call may not have written it.")

    def exists_local(self) -> bool:
        """Whether the file (or folder) is here, where this code runs (nothing is fetched)."""
        return os.path.exists(self)

    def exists_remote(self) -> bool:
        """Whether :meth:`get` can bring the file here now."""
        if self.origin_name is None:
            return False
        if self._local_source() is not None:
            return True
        kept = self._kept()
        if kept is not None and kept[0].exists(kept[1]):
            return True
        return self._ask_producer(upload=False)

    def _fetch(self, overwrite: bool) -> bool:
        target = os.path.abspath(self)
        source = self._local_source()
        if source is not None:
            if os.path.exists(target) and os.path.samefile(source, target):
                return True  # the producer's file itself: nothing to move
            self._check_target(target, overwrite)
            place_tree(source, target)  # a copy: the producer may still write its file in place
            return True
        kept = self._kept()
        if kept is None:
            return False
        store, key = kept
        if not store.exists(key) and not self._ask_producer(upload=True):
            return False
        self._check_target(target, overwrite)
        store.download(key, target)
        return True

    def _check_target(self, target: str, overwrite: bool) -> None:
        if os.path.lexists(target) and not overwrite:
            raise FileExistsError(f"{target} exists here; {type(self).__name__}.get(overwrite=True) replaces "
                                  f"it with the file of {self.origin_name}")

    def _local_source(self) -> str | None:
        return self._source.local_file() if self._source is not None else None

    def _kept(self) -> tuple[Store, str] | None:
        app_id = current_app_id(self._app_id)
        origin = self.origin_name
        if app_id is None or origin is None:
            return None
        return open_store(storage_url(self._storage)), keys.path_key(app_id, origin, str(self))

    def _ask_producer(self, upload: bool) -> bool:
        """Ask the producer's worker (on another machine, while the call runs) whether it has the file, and
        with ``upload`` to put it in the app's storage. Only from inside a work on a Dask worker."""
        source, kept = self._source, self._kept()
        if source is None or source.worker is None or source.machine == machine_id() or kept is None \
                or worker_address() is None:
            return False
        from distributed import get_client

        store, key = kept
        try:
            answers = get_client().run(_provide, source.path, store.url if upload else None, key,
                                       workers=[source.worker], on_error="return")
        except Exception:
            return False  # the worker is gone
        return answers.get(source.worker) is True

    def _where_looked(self) -> str:
        source = self._source
        places = []
        if source is not None and source.machine != machine_id():
            places.append(f"its producer wrote it on another machine ({source.path})")
        elif source is not None and os.path.exists(source.path):
            places.append(f"the file at {source.path} is not the one {self.origin_name} made")
        elif source is not None:
            places.append(f"not at {source.path} on this machine")
        kept = self._kept()
        if kept is not None:
            places.append(f"not in the app's storage {kept[0].url}")
        return "; ".join(places) or "it was never produced inside an app"

    # -- copying and pickling -------------------------------------------------------------------------------
    def _copy(self) -> Path:
        path = Path(str(self))
        path._origin, path._origin_name = self._origin, self._origin_name
        path._consumer_name, path._source = self._consumer_name, self._source
        path._app_id, path._storage = self._app_id, self._storage
        return path

    def _meta(self) -> dict[str, Any]:
        app_id = current_app_id(self._app_id)
        return {"_origin_name": self.origin_name, "_consumer_name": self._consumer_name,
                "_source": self._source, "_app_id": app_id,
                "_storage": storage_url(self._storage) if app_id else self._storage}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (str(self), self._meta()))


def lit_root() -> str:
    """The folder ``lit://`` paths live under: ``$STORAGE_ROOT_DIR``, as in the reference, else ``.storage``
    (relative: each work resolves it in its own working directory). Made if missing, as the reference does,
    so that ``open(Path("lit://name"), "w")`` works at once."""
    root = os.environ.get("STORAGE_ROOT_DIR", ".storage")
    try:
        os.makedirs(root, exist_ok=True)
    except OSError:
        pass  # a folder that cannot be made here: writing into it will say so
    return root


register_lit_path(lambda text: Path(text))


def _restore(text: str, meta: dict[str, Any]) -> Path:
    path = Path(text)
    for name, value in meta.items():
        setattr(path, name, value)
    return path


async def _provide(path: str, upload_to: str | None, key: str) -> bool:
    """On the producer's worker: whether ``path`` exists, and with ``upload_to`` put it in that storage."""
    import asyncio

    if not os.path.exists(path):
        return False
    if upload_to is not None:
        store = open_store(upload_to)
        await asyncio.get_running_loop().run_in_executor(None, store.upload, path, key)
    return True
