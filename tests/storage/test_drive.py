"""Drive between works on the worker processes of a real LocalCluster: put/get/list/delete, namespaces,
refusals, concurrent writers, a large file streamed."""

from __future__ import annotations

import os
import pathlib
import threading
import time

import pytest
from bigfile import BigFile, BigFlow, MiB

from lightnb import Drive, LightningFlow, LightningWork


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class Ops(LightningWork):
    """Runs drive operations given as data, on the drive it holds, and records each result or error."""

    def __init__(self, drive_id: str, folder: str, **drive_options):
        super().__init__()
        self.drive = Drive(drive_id, root_folder=folder, **drive_options)
        self.results = {}
        self.worker = None

    def run(self, step: int, ops: list):
        from distributed import get_worker

        results = []
        for op, *args in ops:
            try:
                if op == "write":
                    target = pathlib.Path(self.drive.root_folder, args[0])
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(args[1])
                    result = "ok"
                elif op == "put":
                    self.drive.put(args[0])
                    result = "ok"
                elif op == "get":
                    got = self.drive.get(*args)
                    files = sorted(p for p in got.rglob("*") if p.is_file())
                    result = got.read_text() if got.is_file() else {str(p.relative_to(got)): p.read_text()
                                                                    for p in files}
                elif op == "list":
                    result = self.drive.list(*args)
                elif op == "delete":
                    self.drive.delete(args[0])
                    result = "ok"
                else:
                    raise AssertionError(op)
            except Exception as error:
                result = _describe(error)
            results.append(result)
        self.results[str(step)] = results
        self.worker = get_worker().address


class Consumer(LightningWork):
    """Receives the drive as a run argument (it becomes this work's drive for the call)."""

    def __init__(self):
        super().__init__()
        self.got = {}

    def run(self, drive: Drive, step: int, paths: list):
        got = {"owner": drive.component_name}
        for path in paths:
            try:
                local = drive.get(path, overwrite=True)
                got[path] = local.read_text()
                got[path + ":inode"] = os.stat(local).st_ino
            except Exception as error:
                got[path] = _describe(error)
        self.got[str(step)] = got


class Steps(LightningFlow):
    """Runs (work, ops) steps one after the other, then stops."""

    def __init__(self, works: dict, steps: list, folder: str | None = None):
        super().__init__()
        for name, work in works.items():
            setattr(self, name, work)
        self.drive = Drive("lit://shared", root_folder=folder) if folder else None
        self._steps = steps

    def run(self):
        for step, (name, ops) in enumerate(self._steps):
            work = getattr(self, name)
            if isinstance(work, Consumer):
                work.run(self.drive, step, ops)
            else:
                work.run(step, ops)
        self.stop("done")


def test_put_get_list_delete_between_works(run_app, tmp_path):
    producer = Ops("lit://shared", str(tmp_path / "producer"))
    steps = [
        ("producer", [("write", "a.txt", "alpha"), ("write", "models/m1.txt", "one"),
                      ("write", "models/deep/m2.txt", "two"), ("put", "a.txt"), ("put", "models"),
                      ("list", "."), ("list", "models"), ("list", "models/m1.txt"), ("list", "nope")]),
        ("consumer", ["a.txt", "models/m1.txt", "models/deep/m2.txt"]),
        ("producer", [("delete", "a.txt"), ("list", ".", "root.producer"), ("delete", "a.txt")]),
        ("consumer", ["a.txt", "models/deep/m2.txt"]),
    ]
    app = run_app(Steps({"producer": producer, "consumer": Consumer()}, steps, str(tmp_path / "consumer")))
    root = app.root

    put = root.producer.results["0"]
    assert put[:5] == ["ok"] * 5
    assert put[5:8] == [["a.txt", "models"], ["models/deep", "models/m1.txt"], ["models/m1.txt"]]
    assert put[8] == "FileNotFoundError: drive lit://shared has no 'nope'"

    first = root.consumer.got["1"]
    assert first["owner"] == "root.consumer"  # a drive received in run() belongs to that work
    assert (first["a.txt"], first["models/m1.txt"], first["models/deep/m2.txt"]) == ("alpha", "one", "two")
    assert (tmp_path / "consumer" / "models" / "deep" / "m2.txt").read_text() == "two"
    stored = tmp_path / "storage" / "drives" / "shared" / "root.producer"
    # On one disk the consumer's file is a link to the stored copy: nothing was copied.
    assert first["models/m1.txt:inode"] == os.stat(stored / "models" / "m1.txt").st_ino

    assert root.producer.results["2"] == [
        "ok", ["models"],
        "FileNotFoundError: drive lit://shared has no 'a.txt' for component root.producer"]
    second = root.consumer.got["3"]
    assert second["a.txt"].startswith("FileNotFoundError: no component of drive lit://shared holds 'a.txt'")
    assert "root.producer" in second["a.txt"]  # the components that do have files
    assert second["models/deep/m2.txt"] == "two"
    assert not (stored / "a.txt").exists() and (stored / "models" / "m1.txt").exists()
    # From the notebook (outside any work), a component's drive looks in its app's storage.
    assert root.producer.drive.list() == ["models"]
    assert root.producer.drive.component_name == "root.producer"


def test_namespaces_duplicates_and_ambiguous_gets(run_app, tmp_path):
    works = {name: Ops("lit://dup", str(tmp_path / name), allow_duplicates=True) for name in ("a", "b", "c")}
    works["strict"] = Ops("lit://strict", str(tmp_path / "strict"))
    works["strict2"] = Ops("lit://strict", str(tmp_path / "strict2"))
    steps = [
        ("a", [("write", "same.txt", "from a"), ("put", "same.txt")]),
        ("b", [("write", "same.txt", "from b"), ("put", "same.txt"), ("delete", "only-a.txt")]),
        ("c", [("get", "same.txt"), ("get", "same.txt", "root.b"), ("list", "."),
               ("get", "same.txt", "root.c"), ("put", "absent.txt")]),
        ("strict", [("write", "x.txt", "first"), ("put", "x.txt"), ("put", "x.txt")]),
        ("strict2", [("write", "x.txt", "second"), ("put", "x.txt"), ("get", "x.txt", None, True)]),
    ]
    app = run_app(Steps(works, steps))
    root = app.root
    assert root.b.results["1"][2] == ("FileNotFoundError: drive lit://dup has no 'only-a.txt' for component "
                                      "root.b")
    ambiguous, chosen, listing, missing, put_missing = root.c.results["2"]
    assert ambiguous.startswith("ValueError: 'same.txt' is held by several components of drive lit://dup: "
                                "root.a, root.b.")
    assert "component_name=" in ambiguous
    assert chosen == "from b" and listing == ["same.txt"]
    assert missing == ("FileNotFoundError: drive lit://dup has no 'same.txt' for component root.c (it is "
                       "held by root.a, root.b)")
    assert put_missing == ("FileNotFoundError: cannot put 'absent.txt' into drive lit://dup: there is no "
                           f"file or folder {tmp_path / 'c' / 'absent.txt'}")
    assert root.strict.results["3"] == ["ok", "ok", "ok"]  # a component may replace its own file
    refused = root.strict2.results["4"]
    assert refused[1].startswith("FileExistsError: drive lit://strict already holds 'x.txt' for root.strict; "
                                 "root.strict2 cannot put")
    assert "allow_duplicates=True" in refused[1]
    assert refused[2] == "first"  # nothing was lost or replaced


def test_paths_leaving_the_drive_are_refused(run_app, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    namespace = tmp_path / "storage" / "drives" / "safe" / "root.w"
    namespace.mkdir(parents=True)
    (namespace / "escape").symlink_to(outside)  # planted in the store: a link out of the drive
    (tmp_path / "storage" / "drives" / "safe" / "root.evil").symlink_to(outside, target_is_directory=True)
    steps = [("w", [("write", "ok.txt", "fine"), ("put", "../ok.txt"), ("put", "/etc/hostname"),
                    ("get", "a/../../x"), ("get", "escape/secret.txt", "root.w"),
                    ("get", "secret.txt", "root.evil"), ("list", "escape"), ("write", "escape/new.txt", "n"),
                    ("put", "escape/new.txt"), ("put", "ok.txt"), ("get", "ok.txt", "root.w", True),
                    ("list", ".")])]
    app = run_app(Steps({"w": Ops("lit://safe", str(tmp_path / "w"))}, steps))
    results = app.root.w.results["0"]
    assert results[1] == ("UnsafePathError: '../ok.txt' goes up with '..' and would leave drive lit://safe; "
                          "use a path inside it (e.g. 'models/best.ckpt')")
    assert results[2].startswith("UnsafePathError: '/etc/hostname' is an absolute path; paths in drive "
                                 "lit://safe are relative")
    assert results[3].startswith("UnsafePathError: 'a/../../x' goes up with '..'")
    for index, shown in ((4, "escape/secret.txt"), (5, "secret.txt"), (6, "escape"), (8, "escape/new.txt")):
        assert results[index].startswith("UnsafePathError: "), results[index]
        assert f"{shown!r} leaves drive lit://safe through a symbolic link" in results[index], results[index]
    # The drive still works; the component whose folder leads out of it is not one of its components.
    assert results[9:] == ["ok", "fine", ["escape", "ok.txt"]]
    assert sorted(os.listdir(outside)) == ["secret.txt"]  # nothing was written out of the drive


class Rewriter(LightningWork):
    """Puts versions of one file, as fast as it can, in a namespace shared with the other writer."""

    def __init__(self, tag: int, folder: str):
        super().__init__(parallel=True)
        self.drive = Drive("lit://race", component_name="shared", allow_duplicates=True, root_folder=folder)
        self.tag = tag
        self.puts = 0

    def run(self, rounds: int):
        local = pathlib.Path(self.drive.root_folder, "blob.bin")
        local.parent.mkdir(parents=True, exist_ok=True)
        for n in range(rounds):
            local.write_bytes(bytes([self.tag * 16 + n % 16]) * (1 << 20))
            self.drive.put("blob.bin")
        self.puts = rounds


class RaceReader(LightningWork):
    def __init__(self, folder: str):
        super().__init__(parallel=True)
        self.drive = Drive("lit://race", component_name="shared", root_folder=folder)
        self.reads = 0
        self.torn = 0

    def run(self, rounds: int):
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for the writers' first version
            try:
                self.drive.get("blob.bin", overwrite=True)
                break
            except FileNotFoundError:
                time.sleep(0.01)
        for _ in range(rounds):
            try:
                data = self.drive.get("blob.bin", overwrite=True).read_bytes()
            except FileNotFoundError:
                continue
            self.reads += 1
            if len(data) != 1 << 20 or data.count(data[:1]) != len(data):
                self.torn += 1


class Race(LightningFlow):
    def __init__(self, folder: pathlib.Path):
        super().__init__()
        self.one = Rewriter(1, str(folder / "one"))
        self.two = Rewriter(2, str(folder / "two"))
        self.reader = RaceReader(str(folder / "reader"))

    def run(self):
        for work in (self.one, self.two, self.reader):
            work.run(60)
        if all(work.has_succeeded for work in (self.one, self.two, self.reader)):
            self.stop("done")


def test_concurrent_writers_never_tear_a_file(run_app, tmp_path):
    stored = tmp_path / "storage" / "drives" / "race" / "shared" / "blob.bin"
    seen: list[bytes] = []
    torn: list[int] = []
    done = threading.Event()

    def watch() -> None:  # this process reads the stored file directly while the works rewrite it
        while not done.is_set():
            try:
                data = stored.read_bytes()
            except FileNotFoundError:
                time.sleep(0.001)
                continue
            seen.append(data[:1])
            if len(data) != 1 << 20 or data.count(data[:1]) != len(data):
                torn.append(len(data))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        app = run_app(Race(tmp_path))
    finally:
        done.set()
        watcher.join()
    assert app.root.one.puts == app.root.two.puts == 60
    assert app.root.reader.torn == 0 and torn == []
    assert app.root.reader.reads > 0
    final = stored.read_bytes()
    assert final[:1] in (bytes([16 + 59 % 16]), bytes([32 + 59 % 16]))  # one writer's last version, whole
    assert [name for name in os.listdir(stored.parent) if name != "blob.bin"] == []  # no temporary left


def test_a_large_file_is_streamed_not_loaded(run_app, tmp_path):
    size = 256 * MiB
    flow = BigFlow(BigFile(size, str(tmp_path / "producer")), BigFile(size, str(tmp_path / "consumer")))
    app = run_app(flow)
    producer, consumer = app.root.producer, app.root.consumer
    assert producer.digest == consumer.digest
    assert os.path.getsize(tmp_path / "consumer" / "big.bin") == size
    for work in (producer, consumer):
        assert work.peak_traced < 8 * MiB, work.peak_traced  # Python held no more than a few MiB
        assert work.rss_growth < 64 * MiB, work.rss_growth  # and the process far less than the file
    assert (os.stat(tmp_path / "consumer" / "big.bin").st_ino
            != os.stat(tmp_path / "storage" / "drives" / "big" / "root.producer" / "big.bin").st_ino)


def test_a_drive_without_an_owner_says_how_to_give_it_one(tmp_path):
    drive = Drive("lit://lonely", root_folder=str(tmp_path))
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(RuntimeError, match="belongs to no component.*set it as an attribute"):
        drive.put("f.txt")
