"""The durable record of a named app: what lets it outlive the process that ran it.

An app given a ``name`` keeps, under its storage root (a local folder or any fsspec URL), a record of the
tree's state, each work's call table (which calls succeeded, which were running, on which task) and the app's
stage::

    <storage>/.lightnb/apps/<name>/meta.json            what the record is (format, app id, cluster, stage)
    <storage>/.lightnb/apps/<name>/snapshot.json        every component, as of segment N
    <storage>/.lightnb/apps/<name>/segments/<seq>.json  the components that changed, one segment per flush

It is written as the app changes: a flush writes only the components that changed since the previous one
(cost proportional to the change), in one new file put atomically (a rename on a folder, a single PUT on an
object store); every so many segments they are folded into a new snapshot. A process killed at any moment
leaves the previous files whole: a reader takes the snapshot and the segments after it, and ignores what a
writer had not finished (it never renamed it into place).

Values are JSON where they are plain data; anything else a component holds (a ``Path``, a ``Payload``, a
``Drive``) and the arguments of its calls travel pickled inside the JSON. Private (``_x``) attributes are not
state and are not recorded.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ..core.calls import Call, CallTable, WorkStageStatus
from ..core.component import Component, Node
from ..core.flow import LightningFlow, find_component
from ..core.structures import Structure
from ..core.values import plain
from ..core.work import LightningWork
from ..runtime.pickling import dumps
from .store import Store, open_store

FORMAT = 1
RECORDS = ".lightnb/apps"
COMPACT_EVERY = 64  # segments folded into a new snapshot
FLUSH_INTERVAL = 0.2  # seconds: at most one segment per interval


class RecordError(RuntimeError):
    """A record that cannot be used as it is: its message names the record and what to do."""


@dataclass
class RecordedApp:
    """A record as read back."""

    name: str
    meta: dict[str, Any]
    components: dict[str, dict[str, Any]]
    seq: int

    @property
    def stage(self) -> str:
        return str(self.meta.get("stage", "unknown"))


@dataclass
class RestoreReport:
    """What resuming did to a fresh tree."""

    restored: list[str] = field(default_factory=list)
    not_in_record: list[str] = field(default_factory=list)  # components of the new tree the record lacks
    not_in_tree: list[str] = field(default_factory=list)  # recorded components the new tree lacks
    rerun: list[str] = field(default_factory=list)  # interrupted calls that run again ("root.train")
    reattach: list[tuple[str, str]] = field(default_factory=list)  # (work, call id) still running

    def describe(self) -> str:
        parts = [f"resumed {len(self.restored)} component(s)"]
        if self.reattach:
            parts.append("re-attached to " + ", ".join(work for work, _ in self.reattach))
        if self.rerun:
            parts.append("running again (their calls were interrupted): " + ", ".join(self.rerun))
        if self.not_in_record:
            parts.append("not in the record, started fresh: " + ", ".join(self.not_in_record))
        if self.not_in_tree:
            parts.append("in the record but not in the app any more, left out: " + ", ".join(self.not_in_tree))
        return "; ".join(parts)


# -- encoding components -------------------------------------------------------------------------------------
# Taking a component's record is two steps: a snapshot under the app's lock (plain copies of its values, its
# calls as they are: cheap), and its encoding into JSON on the writer's thread (pickling what is not plain
# data; a call's arguments, which never change, once per call).
_PLAIN = (str, int, float, bool, type(None))


def _is_plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_plain(item) for key, item in value.items())
    return False


def _encode(value: Any) -> Any:
    if _is_plain(value):
        return value
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _encode(item) for key, item in value.items()}
    return {"__pickle__": base64.b64encode(dumps(value)).decode("ascii")}


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__pickle__"}:
            return cloudpickle.loads(base64.b64decode(value["__pickle__"]))
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _kind(node: Node) -> str:
    return "work" if isinstance(node, LightningWork) else "flow" if isinstance(node, LightningFlow) else "structure"


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    call: Call  # for its arguments (they never change)
    stage: str
    timestamp: float
    message: str | None
    reason: str | None
    attempt: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A component as it was, taken under the app's lock; encoded later, elsewhere."""

    kind: str
    cls: str
    values: dict[str, Any]
    calls: tuple[CallSnapshot, ...] | None = None
    latest: str | None = None
    active: str | None = None
    queue: tuple[str, ...] = ()


def snapshot(node: Node) -> Snapshot:
    kind, cls = _kind(node), f"{type(node).__module__}.{type(node).__qualname__}"
    values = {key: plain(value) for key, value in node._public_values().items()} if isinstance(node, Component) \
        else {}
    if not isinstance(node, LightningWork):
        return Snapshot(kind, cls, values)
    table = node._calls
    calls = tuple(CallSnapshot(call, call.stage.value, call.timestamp, call.message, call.reason, call.attempt)
                  for call in table.calls.values())
    return Snapshot(kind, cls, values, calls, table.latest, table.active.call_id if table.active else None,
                    tuple(call.call_hash for call in table.queue))


def snapshots(root: Node, names: set[str] | None = None,
              known: Mapping[str, Node] | None = None) -> dict[str, Snapshot]:
    """Snapshots of the components of ``root`` (only those in ``names`` when given: looked up in ``known``
    — e.g. the engine's works by name — or found by name, so the cost follows what changed, not the size of
    the tree)."""
    if names is None:
        return {node.name: snapshot(node) for node in root._walk()}
    taken = {}
    for name in names:
        node = known.get(name) if known is not None else None
        try:
            taken[name] = snapshot(node if node is not None else find_component(root, name))
        except KeyError:
            continue  # gone since (a structure changed)
    return taken


def encode(taken: Snapshot, arguments: dict[int, str] | None = None) -> dict[str, Any]:
    """The JSON record of a snapshot; ``arguments`` caches encoded call arguments by call."""
    record: dict[str, Any] = {"kind": taken.kind, "class": taken.cls,
                              "vars": {key: _encode(value) for key, value in taken.values.items()}}
    if taken.calls is None:
        return record
    entries = []
    for call in taken.calls:
        encoded = arguments.get(id(call.call)) if arguments is not None else None
        if encoded is None:
            encoded = base64.b64encode(dumps((call.call.args, call.call.kwargs))).decode("ascii")
            if arguments is not None:
                arguments[id(call.call)] = encoded
        entries.append({"hash": call.call.call_hash, "stage": call.stage, "timestamp": call.timestamp,
                        "message": call.message, "reason": call.reason, "attempt": call.attempt,
                        "arguments": encoded})
    record["calls"] = {"latest": taken.latest, "active": taken.active, "queue": list(taken.queue),
                       "entries": entries}
    return record


def tree_records(root: Node, names: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """The JSON records of the components of ``root`` (only those in ``names`` when given)."""
    return {name: encode(taken) for name, taken in snapshots(root, names).items()}


# -- restoring -----------------------------------------------------------------------------------------------
def restore(root: LightningFlow, recorded: RecordedApp, *,
            reattach: Callable[[str, str], bool]) -> RestoreReport:
    """Give the fresh tree ``root`` the recorded state.

    Finished calls are restored as they ended (with ``cache_calls`` they are not run again). A call that was
    running or queued when the record was last written is re-attached where ``reattach(work_name, call_id)``
    says it still runs on the cluster, else queued to run again from the work's last recorded state.
    """
    report = RestoreReport()
    nodes = {node.name: node for node in root._walk()}
    for name, record in recorded.components.items():
        node = nodes.get(name)
        if node is None:
            report.not_in_tree.append(name)
            continue
        if _kind(node) != record.get("kind"):
            report.not_in_tree.append(f"{name} (recorded as a {record.get('kind')}, now a {_kind(node)})")
            continue
        if isinstance(node, Component):
            declared = node._public_values()
            for key, value in record.get("vars", {}).items():
                if key in declared:
                    node._apply_remote(key, _decode(value))
        if isinstance(node, LightningWork) and "calls" in record:
            _restore_calls(node, record, reattach, report)
        report.restored.append(name)
    report.not_in_record = [name for name, node in nodes.items()
                            if name not in recorded.components and not isinstance(node, Structure)]
    return report


def _restore_calls(work: LightningWork, record: dict[str, Any], reattach: Callable[[str, str], bool],
                   report: RestoreReport) -> None:
    calls = record["calls"]
    table = CallTable()
    for entry in calls.get("entries", []):
        args, kwargs = cloudpickle.loads(base64.b64decode(entry["arguments"]))
        table.calls[entry["hash"]] = Call(entry["hash"], tuple(args), dict(kwargs), WorkStageStatus(entry["stage"]),
                                          entry["timestamp"], entry["message"], entry["reason"], entry["attempt"])
    table.latest = calls.get("latest")
    active_id = calls.get("active")
    interrupted = [table.calls[h] for h in calls.get("queue", []) if h in table.calls]
    active = next((call for call in table.calls.values() if call.call_id == active_id), None)
    if active is not None and active.stage is WorkStageStatus.RUNNING and reattach(work.name, active.call_id):
        table.active = active
        report.reattach.append((work.name, active.call_id))
    elif active is not None:
        interrupted.insert(0, active)
    for call in interrupted:
        if call is not active:
            call.stage = WorkStageStatus.PENDING
        else:
            # It ran (or was sent) and was lost with the process: a new attempt, from the work's last state.
            call.attempt += 1
            call.stage, call.message, call.reason = WorkStageStatus.PENDING, None, None
            report.rerun.append(work.name)
        table.queue.append(call)
    object.__setattr__(work, "_calls", table)


# -- the files ----------------------------------------------------------------------------------------------
class AppRecord:
    """The record of the app ``name`` under the storage root ``url``."""

    def __init__(self, url: str, name: str) -> None:
        if not name or "/" in name or name.startswith("."):
            raise RecordError(f"{name!r} cannot name an app's record: use letters, digits, '-' or '_'")
        self.url = url
        self.name = name
        self.store: Store = open_store(url)
        self.key = f"{RECORDS}/{name}"

    def __repr__(self) -> str:
        return f"<AppRecord {self.name} in {self.url}>"

    @property
    def where(self) -> str:
        return self.store.location(self.key)

    def exists(self) -> bool:
        try:
            return self.store.exists(f"{self.key}/meta.json")
        except Exception as error:
            raise RecordError(f"the storage {self.url} holding the record of {self.name} cannot be reached: "
                              f"{type(error).__name__}: {error}. Check the storage URL and its credentials.") \
                from None

    def read(self) -> RecordedApp:
        """The record as last written; :class:`RecordError` naming it if it cannot be used (nothing deleted)."""
        meta = self._read_json("meta.json")
        if meta.get("format") != FORMAT:
            raise RecordError(
                f"the record of {self.name} at {self.where} was written by a lightnb whose record format is "
                f"{meta.get('format')!r}; this lightnb reads format {FORMAT}. Resume it with the lightnb that wrote "
                f"it, or start over with resume=False (the record is replaced when the app starts)."
            )
        snapshot = self._read_json("snapshot.json") if self.store.exists(f"{self.key}/snapshot.json") else \
            {"seq": 0, "components": {}}
        components: dict[str, dict[str, Any]] = dict(snapshot.get("components", {}))
        seq = int(snapshot.get("seq", 0))
        for number, key in self._segments():
            if number <= int(snapshot.get("seq", 0)):
                continue
            segment = self._read_json(key.split(f"{self.key}/", 1)[1])
            components.update(segment.get("components", {}))
            if segment.get("meta"):
                meta.update(segment["meta"])
            seq = number
        return RecordedApp(self.name, meta, components, seq)

    def _segments(self) -> list[tuple[int, str]]:
        folder = f"{self.key}/segments"
        if not self.store.exists(folder):
            return []
        found = []
        for stem, is_folder in self.store.entries(folder):
            if not is_folder and stem.endswith(".json") and stem[:-5].isdigit():
                found.append((int(stem[:-5]), f"{folder}/{stem}"))
        return sorted(found)

    def _read_json(self, relative: str) -> dict[str, Any]:
        key = f"{self.key}/{relative}"
        try:
            data = self.store.read_bytes(key)
        except FileNotFoundError:
            raise RecordError(f"the record of {self.name} at {self.where} has no {relative}: it is incomplete. "
                              f"Start over with resume=False, or delete it with `lightnb apps rm {self.name}`.") \
                from None
        except Exception as error:
            raise RecordError(f"the record of {self.name} at {self.where} cannot be read ({relative}): "
                              f"{type(error).__name__}: {error}. Check the storage and its credentials.") from None
        try:
            value = json.loads(data)
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
            return value
        except ValueError as error:
            raise RecordError(f"the record of {self.name} at {self.where} is corrupt ({relative}: {error}). "
                              "Nothing was deleted: start over with resume=False (the record is replaced), or "
                              f"delete it with `lightnb apps rm {self.name}`.") from None

    def write_json(self, relative: str, value: dict[str, Any]) -> None:
        self.store.write_bytes(f"{self.key}/{relative}", json.dumps(value, separators=(",", ":")).encode())

    def start_over(self, meta: dict[str, Any], components: dict[str, dict[str, Any]]) -> None:
        """Replace whatever was recorded by a new record holding ``components``."""
        if self.store.exists(self.key):
            self.store.remove(self.key)
        self.write_json("snapshot.json", {"seq": 0, "components": components})
        self.write_json("meta.json", {"format": FORMAT, **meta})

    def delete(self) -> None:
        if not self.store.exists(self.key):
            raise RecordError(f"no app record named {self.name} in {self.url}")
        self.store.remove(self.key)


def list_records(url: str) -> Iterator[RecordedApp | RecordError]:
    """Every record under the storage root ``url`` (a record that cannot be read comes as its error)."""
    store = open_store(url)
    if not store.exists(RECORDS):
        return
    for name, is_dir in sorted(store.entries(RECORDS)):
        if is_dir:
            try:
                yield AppRecord(url, name.rsplit("/", 1)[-1]).read()
            except RecordError as error:
                yield error


# -- writing as the app runs ---------------------------------------------------------------------------------
class Recorder:
    """Writes a running app's changes into its record, from a thread of its own.

    :meth:`changed` (called on the app's loop thread after each iteration) only notes the names of the
    components that changed. At most every ``interval`` seconds the writer thread takes snapshots of those
    (``take(names)``, which holds the app's lock for that moment), encodes them and writes one segment;
    every ``COMPACT_EVERY`` segments it folds them into a new snapshot. A component that changed a hundred
    times in an interval is taken, encoded and written once.
    """

    def __init__(self, record: AppRecord, take: Callable[[set[str]], dict[str, Snapshot]], seq: int = 0,
                 interval: float | None = None) -> None:
        self.record = record
        self.take = take
        self.interval = FLUSH_INTERVAL if interval is None else interval
        self._seq = seq
        self._pending: set[str] = set()
        self._arguments: dict[int, str] = {}  # encoded call arguments, by call (they never change)
        self._calls: dict[int, Call] = {}  # keeps those calls alive while their id is a key
        self._meta: dict[str, Any] = {}
        self._condition = threading.Condition()
        self._closed = False
        self._since_snapshot = 0
        self.errors: list[str] = []
        self.finished = threading.Event()  # closed, and everything written
        self._thread = threading.Thread(target=self._run, name=f"lightnb-record-{record.name}", daemon=True)
        self._thread.start()

    def changed(self, names: Iterable[str], meta: dict[str, Any] | None = None) -> None:
        with self._condition:
            self._pending.update(names)
            if meta:
                self._meta.update(meta)
            self._condition.notify()

    def close(self, meta: dict[str, Any] | None = None) -> None:
        """Write what is pending (and ``meta``) and stop the writer."""
        with self._condition:
            if meta:
                self._meta.update(meta)
            self._closed = True
            self._condition.notify()
        self._thread.join(30)

    def _run(self) -> None:
        try:
            self._write_until_closed()
        finally:
            self.finished.set()

    def _write_until_closed(self) -> None:
        while True:
            with self._condition:
                while not (self._pending or self._meta or self._closed):
                    self._condition.wait()
                closed = self._closed
            if not closed:
                time.sleep(self.interval)  # let changes accumulate: one segment per interval at most
            with self._condition:
                names, self._pending = self._pending, set()
                meta, self._meta = self._meta, {}
                closed = self._closed
            if names or meta:
                try:
                    taken = self.take(names) if names else {}
                except Exception as error:
                    self.errors.append(f"{type(error).__name__}: {error}")
                    continue
                self._flush({name: self._encode(snapshot) for name, snapshot in taken.items()}, meta)
            if closed:
                with self._condition:
                    if not (self._pending or self._meta):
                        return

    def _encode(self, taken: Snapshot) -> dict[str, Any]:
        for call in taken.calls or ():
            self._calls.setdefault(id(call.call), call.call)
        return encode(taken, self._arguments)

    def _flush(self, components: dict[str, dict[str, Any]], meta: dict[str, Any]) -> None:
        try:
            self._seq += 1
            segment: dict[str, Any] = {"seq": self._seq, "components": components}
            if meta:
                segment["meta"] = {**meta, "updated": time.time()}
            self.record.write_json(f"segments/{self._seq:012d}.json", segment)
            self._since_snapshot += 1
            if self._since_snapshot >= COMPACT_EVERY:
                self._compact()
        except Exception as error:  # the app goes on; the record says what it missed
            self.errors.append(f"{type(error).__name__}: {error}")

    def _compact(self) -> None:
        recorded = self.record.read()
        # meta first: a segment's meta is read only while its segment is newer than the snapshot
        self.record.write_json("meta.json", {**recorded.meta, "format": FORMAT})
        self.record.write_json("snapshot.json", {"seq": recorded.seq, "components": recorded.components})
        for number, key in self.record._segments():
            if number <= recorded.seq:
                self.record.store.remove(key)
        self._since_snapshot = 0
