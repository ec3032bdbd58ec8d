"""The storage rules and the store's file moves, without an app: path safety, atomic writes, links."""

from __future__ import annotations

import os
import threading

import pytest

from lightnb.runtime.context import resolve_storage
from lightnb.storage import keys
from lightnb.storage.keys import UnsafePathError
from lightnb.storage.store import Store, place_file


@pytest.mark.parametrize("given, expected", [
    ("a.txt", "a.txt"), ("models/./best.ckpt", "models/best.ckpt"), ("models//x/", "models/x"),
    (os.path.join("sub", "f"), "sub/f"),
])
def test_relative_paths_are_normalized(given, expected):
    assert keys.safe_relative(given, "drive lit://x") == expected


@pytest.mark.parametrize("bad, why", [
    ("../secret", "'..'"), ("a/../../secret", "'..'"), ("/etc/passwd", "absolute"), ("C:\\x", "absolute"),
    ("..\\up", "'..'"), ("", "whole"), (".", "whole"),
])
def test_paths_leaving_the_drive_are_refused_naming_them(bad, why):
    with pytest.raises(UnsafePathError) as error:
        keys.safe_relative(bad, "drive lit://x")
    assert repr(bad) in str(error.value) and why in str(error.value)
    assert "drive lit://x" in str(error.value)


def test_drive_ids_say_what_is_expected():
    assert keys.drive_name("lit://models") == "models"
    with pytest.raises(ValueError, match=r"storage='s3://bucket/x'"):
        keys.drive_name("s3://bucket/x")
    with pytest.raises(ValueError, match="no '/'"):
        keys.drive_name("lit://a/b")


def test_storage_default_is_an_absolute_folder_env_or_url(monkeypatch, tmp_path):
    monkeypatch.delenv("LIGHTNB_STORAGE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_storage(None) == str(tmp_path / ".lightnb-storage")
    assert resolve_storage("rel/store") == str(tmp_path / "rel" / "store")
    monkeypatch.setenv("LIGHTNB_STORAGE", "s3://bucket/prefix")
    assert resolve_storage(None) == "s3://bucket/prefix"
    assert resolve_storage("memory://x") == "memory://x"


def test_readers_never_see_a_torn_file_while_threads_rewrite_it(tmp_path):
    size = 1 << 20
    versions = [bytes([n]) * size for n in range(1, 5)]
    for n, data in enumerate(versions):
        (tmp_path / f"v{n}").write_bytes(data)
    target = str(tmp_path / "shared.bin")
    place_file(str(tmp_path / "v0"), target)
    stop = threading.Event()

    def write(n: int) -> None:
        while not stop.is_set():
            place_file(str(tmp_path / f"v{n}"), target)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for writer in writers:
        writer.start()
    seen, torn = set(), 0
    try:
        for _ in range(300):
            with open(target, "rb") as file:
                data = file.read()
            if len(data) != size or data.count(data[:1]) != size:
                torn += 1
            seen.add(data[:1])
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert torn == 0
    assert seen <= {bytes([n]) for n in range(1, 5)}
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []  # no temporary left


def test_local_store_keeps_read_only_copies_and_hands_out_links(tmp_path, monkeypatch):
    store = Store(str(tmp_path / "store"))
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    store.upload(str(source), "drives/d/root.w/model.bin")
    stored = tmp_path / "store" / "drives" / "d" / "root.w" / "model.bin"
    assert stored.read_bytes() == b"weights"
    assert not stored.stat().st_mode & 0o222, "stored files are read-only"
    assert stored.stat().st_mtime_ns == source.stat().st_mtime_ns
    source.write_bytes(b"changed")  # the producer rewrites its file in place: the stored copy stays
    assert stored.read_bytes() == b"weights"

    store.download("drives/d/root.w/model.bin", str(tmp_path / "got" / "model.bin"))
    got = tmp_path / "got" / "model.bin"
    assert got.read_bytes() == b"weights" and got.stat().st_ino == stored.stat().st_ino

    monkeypatch.setenv("LIGHTNB_STORAGE_LINKS", "0")
    store.download("drives/d/root.w/model.bin", str(tmp_path / "copy.bin"))
    assert (tmp_path / "copy.bin").stat().st_ino != stored.stat().st_ino
    assert (tmp_path / "copy.bin").read_bytes() == b"weights"


def test_folders_and_listing_on_an_object_store(tmp_path):
    store = Store("memory://lightnb-test-store")
    folder = tmp_path / "run"
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "a.txt").write_text("a")
    (folder / "b.txt").write_text("b")
    store.upload(str(folder), "drives/d/root.w/run")
    assert sorted(store.entries("drives/d/root.w/run")) == [("b.txt", False), ("logs", True)]
    assert store.files("drives/d/root.w/run") == ["b.txt", "logs/a.txt"]
    assert store.exists("drives/d/root.w/run/logs/a.txt") and store.is_dir("drives/d/root.w/run")
    store.download("drives/d/root.w/run", str(tmp_path / "back"))
    assert (tmp_path / "back" / "logs" / "a.txt").read_text() == "a"
    store.remove("drives/d/root.w/run")
    assert not store.exists("drives/d/root.w/run/b.txt")


def test_a_symlink_out_of_the_drive_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store = Store(str(tmp_path / "store"))
    namespace = tmp_path / "store" / "drives" / "d" / "root.w"
    namespace.mkdir(parents=True)
    (namespace / "escape").symlink_to(outside)
    with pytest.raises(UnsafePathError, match=r"'escape/x' leaves drive lit://d through a symbolic link"):
        store.check_inside("drives/d/root.w/escape/x", "drives/d", "drive lit://d", "escape/x")
    assert store.check_inside("drives/d/root.w/ok", "drives/d", "drive lit://d", "ok").endswith("ok")
