"""Path between works on the worker processes of a real LocalCluster: handed over as an attribute by the flow
and as a run argument, while the producer runs and after it succeeded, kept after its file is gone."""

from __future__ import annotations

import os
import pathlib
import pickle
import shutil
import time

import pytest

from lightnb import LightningFlow, LightningWork, Path


class Maker(LightningWork):
    """Declares its Path in __init__ (the usual pattern) and writes the file in run()."""

    def __init__(self, target: str):
        super().__init__()
        self.out = Path(target)
        self.inode = None

    def run(self, text: str):
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if text.startswith("folder:"):
            (self.out / "logs").mkdir(parents=True, exist_ok=True)
            (self.out / "logs" / "a.txt").write_text(text)
            (self.out / "b.txt").write_text("b")
        else:
            self.out.write_text(text)
        self.inode = os.stat(self.out).st_ino


class Reader(LightningWork):
    """Reads the Path it is given (as a run argument) or holds (as an attribute set by the flow)."""

    def __init__(self):
        super().__init__()
        self.model = None
        self.seen = {}

    def run(self, tag: str, path: Path | None = None):
        target = path if path is not None else self.model
        seen = {"origin": target.origin_name, "type": type(target).__name__}
        try:
            if target.is_dir():
                seen["text"] = {str(p.relative_to(target)): p.read_text() for p in sorted(target.rglob("*"))
                                if p.is_file()}
            else:
                seen["text"] = target.read_text()
            seen["inode"] = os.stat(target).st_ino
        except Exception as error:
            seen["text"] = f"{type(error).__name__}: {error}"
        seen["exists_remote"] = target.exists_remote()
        self.seen[tag] = seen


class HandOver(LightningFlow):
    def __init__(self, folder: pathlib.Path):
        super().__init__()
        self.maker = Maker(str(folder / "made" / "model.txt"))
        self.folder_maker = Maker(str(folder / "made" / "run"))
        self.reader = Reader()
        self._removed = False

    def run(self):
        self.maker.run("v1")
        self.folder_maker.run("folder:v1")
        if self.reader.model is None:
            self.reader.model = self.maker.out  # a Path attribute produced by another work, passed on
        self.reader.run("attribute")
        self.reader.run("argument", self.maker.out)
        if not self._removed:  # the producer's files are gone: the copies kept in the app's storage remain
            os.remove(self.maker.out)
            shutil.rmtree(self.folder_maker.out)
            self._removed = True
        self.reader.run("after-removal", self.maker.out)
        self.reader.run("folder-after-removal", self.folder_maker.out)
        self.stop("done")


def test_a_path_is_handed_over_by_attribute_and_argument_and_kept(run_app, tmp_path):
    app = run_app(HandOver(tmp_path))
    root = app.root
    seen = root.reader.seen
    assert root.reader.model.origin_name == "root.maker"
    for tag in ("attribute", "argument", "after-removal"):
        assert seen[tag]["text"] == "v1", (tag, seen[tag])
        assert seen[tag]["origin"] == "root.maker" and seen[tag]["type"] == "Path"
        assert seen[tag]["exists_remote"] is True
    # On one machine the consumer reads the producer's very file: nothing was moved ...
    assert seen["attribute"]["inode"] == seen["argument"]["inode"] == root.maker.inode
    # ... and once that is gone, the file comes back from the app's storage.
    assert seen["after-removal"]["inode"] != root.maker.inode
    assert (tmp_path / "made" / "model.txt").read_text() == "v1"
    kept = tmp_path / "storage" / "apps" / app.app_id / "paths" / "root.maker" / "abs"
    assert [p.read_text() for p in kept.rglob("model.txt")] == ["v1"]
    assert seen["folder-after-removal"]["text"] == {"logs/a.txt": "folder:v1", "b.txt": "b"}
    assert app.state["works"]["reader"]["vars"]["model"] == {
        "type": "__path__", "path": str(tmp_path / "made" / "model.txt"), "origin_name": "root.maker",
        "consumer_name": "root.reader"}


class Streamer(LightningWork):
    """Produces its file and keeps running until the flow releases it."""

    def __init__(self, target: str):
        super().__init__(parallel=True)
        self.target = target
        self.out = None
        self.release = False

    def run(self):
        pathlib.Path(self.target).write_text("live")
        self.out = Path(self.target)
        deadline = time.monotonic() + 120
        while not self.release and time.monotonic() < deadline:
            time.sleep(0.02)


class LiveFlow(LightningFlow):
    def __init__(self, folder: pathlib.Path):
        super().__init__()
        self.streamer = Streamer(str(folder / "live.txt"))
        self.reader = Reader()

    def run(self):
        self.streamer.run()
        if self.streamer.out is None:
            return
        self.reader.run("while-running", self.streamer.out)
        if self.reader.has_succeeded:
            self.streamer.release = True
        if self.streamer.has_succeeded:
            self.stop("done")


def test_a_path_is_got_while_its_producer_still_runs(run_app, tmp_path):
    app = run_app(LiveFlow(tmp_path))
    seen = app.root.reader.seen["while-running"]
    assert seen["text"] == "live" and seen["origin"] == "root.streamer"


class Getter(LightningWork):
    """Calls Path.get() itself: overwrite rules, and what it says when it cannot get a file."""

    def __init__(self):
        super().__init__()
        self.outcomes = []

    def run(self, path: Path, never_written: Path):
        outcomes = []
        local = pathlib.Path(path)
        os.remove(local)  # what was fetched before run() (a link to the stored copy) ...
        local.write_text("mine")  # ... replaced by a different local file
        for action in (lambda: path.get(), lambda: path.get(overwrite=True), lambda: never_written.get(),
                       lambda: Path(str(path)).get()):
            try:
                action()
                outcomes.append(local.read_text())
            except Exception as error:
                outcomes.append(f"{type(error).__name__}: {error}")
        outcomes.append(never_written.exists_remote())
        self.outcomes = outcomes


class Declarer(LightningWork):
    """Sets a Path it never writes."""

    def __init__(self, target: str):
        super().__init__()
        self.out = None
        self._target = target

    def run(self):
        self.out = Path(self._target)


class GetFlow(LightningFlow):
    def __init__(self, folder: pathlib.Path):
        super().__init__()
        self.maker = Maker(str(folder / "made" / "weights.txt"))
        self.declarer = Declarer(str(folder / "never.txt"))
        self.getter = Getter()
        self._removed = False

    def run(self):
        self.maker.run("v2")
        self.declarer.run()
        if not self._removed:
            os.remove(self.maker.out)
            self._removed = True
        self.getter.run(self.maker.out, self.declarer.out)
        self.stop("done")


def test_get_overwrites_only_when_asked_and_explains_what_is_missing(run_app, tmp_path):
    app = run_app(GetFlow(tmp_path))
    refused, replaced, missing, no_origin, exists = app.root.getter.outcomes
    target = tmp_path / "made" / "weights.txt"
    assert refused == (f"FileExistsError: {target} exists here; Path.get(overwrite=True) replaces it with "
                       "the file of root.maker")
    assert replaced == "v2"
    never = tmp_path / "never.txt"
    assert missing.startswith(f"FileNotFoundError: '{never}' of root.declarer cannot be got: not at {never} "
                              "on this machine; not in the app's storage")
    assert no_origin.startswith(f"RuntimeError: '{target}' has no origin: no work has set it")
    assert exists is False


def test_a_path_pickles_with_its_origin_and_derived_paths_are_plain():
    path = Path("/data/model.pt")
    path._origin_name = "root.train"
    copy = pickle.loads(pickle.dumps(path))
    assert isinstance(copy, Path) and copy == path and copy.origin_name == "root.train"
    assert (copy.parent / "other").origin_name is None
    assert copy.to_state() == {"type": "__path__", "path": "/data/model.pt", "origin_name": "root.train",
                               "consumer_name": None}
    with pytest.raises(RuntimeError, match="has no origin"):
        Path("x").get()
