"""The durable record of a named app, read and written directly: what a resumed app gets back, and what a
reader does with a record that a killed writer, another lightnb or a broken disk left."""

from __future__ import annotations

import json
import time

import pytest

from lightnb import LightningFlow, LightningWork, Payload
from lightnb.core.calls import WorkStageStatus as S
from lightnb.storage import record as records
from lightnb.storage.record import (
    AppRecord,
    Recorder,
    RecordError,
    list_records,
    restore,
    snapshots,
    tree_records,
)


class Step(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.step = 0
        self.weights = None

    def run(self, lr):
        pass


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.prepare = Step()
        self.train = Step()
        self.label = "fresh"

    def run(self):
        pass


def ran(work, lr, stage, step=None):
    """A call of ``work`` as the app would have recorded it."""
    table = work._calls
    table.request(f"h{lr}", (lr,), {}, cache_calls=True, parallel=True, now=1.0)
    call = table.take_next()
    table.on_running(call.call_id, 2.0)
    if stage is not S.RUNNING:
        table.on_finished(call.call_id, stage, 3.0)
    if step is not None:
        work.step = step
    return call


def recorded(tmp_path, root, name="exp1"):
    record = AppRecord(str(tmp_path), name)
    record.start_over({"app_id": "exp1-1234", "stage": "running"}, tree_records(root))
    return record


def test_a_resumed_tree_gets_its_values_its_finished_calls_and_reruns_the_interrupted_one(tmp_path):
    root = Root()
    root.label = "trained"
    root.prepare.weights = Payload([1.0, 2.0])  # not JSON: travels pickled inside the record
    ran(root.prepare, 0.1, S.SUCCEEDED, step=3)
    ran(root.train, 0.2, S.RUNNING, step=7)
    record = recorded(tmp_path, root)

    fresh = Root()
    report = restore(fresh, record.read(), reattach=lambda work, call: False)
    assert (fresh.label, fresh.prepare.step, fresh.prepare.weights.value) == ("trained", 3, [1.0, 2.0])
    assert fresh.prepare.has_succeeded
    assert fresh.prepare._calls.request("h0.1", (0.1,), {}, cache_calls=True, parallel=True, now=5).dispatch \
        is False  # a succeeded call is not run again
    # The interrupted call runs again (a new attempt), from the work's last recorded state.
    assert report.rerun == ["root.train"] and fresh.train.step == 7 and fresh.train.is_pending
    assert fresh.train._calls.take_next().call_id == "h0.2.2"


def test_a_call_still_running_on_the_cluster_is_reattached_not_run_again(tmp_path):
    root = Root()
    call = ran(root.train, 0.2, S.RUNNING, step=7)
    fresh = Root()
    report = restore(fresh, recorded(tmp_path, root).read(), reattach=lambda work, call_id: True)
    assert report.reattach == [("root.train", call.call_id)] and report.rerun == []
    assert fresh.train.is_running and fresh.train._calls.active.call_id == call.call_id
    assert fresh.train._calls.take_next() is None


def test_a_tree_that_changed_resumes_what_matches_and_names_the_rest(tmp_path):
    class Grown(LightningFlow):
        def __init__(self):
            super().__init__()
            self.train = Step()
            self.evaluate = Step()
            self.label = "fresh"

        def run(self):
            pass

    root = Root()
    root.label = "trained"
    grown = Grown()
    report = restore(grown, recorded(tmp_path, root).read(), reattach=lambda work, call: False)
    assert grown.label == "trained"
    assert report.not_in_tree == ["root.prepare"] and report.not_in_record == ["root.evaluate"]
    assert "left out: root.prepare" in report.describe() and "started fresh: root.evaluate" in report.describe()


def test_changes_are_written_as_segments_and_folded_into_snapshots(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "COMPACT_EVERY", 3)
    root = Root()
    record = recorded(tmp_path, root)
    recorder = Recorder(record, lambda names: snapshots(root, names), interval=0)
    for step in range(1, 8):
        root.train.step = step
        recorder.changed({"root.train"}, {"stage": "running"})
        # wait for this flush, so each change is a segment of its own
        for _ in range(500):
            if record.read().components["root.train"]["vars"]["step"] == step:
                break
            time.sleep(0.01)
    recorder.close({"stage": "stopped"})
    assert not recorder.errors
    back = record.read()
    assert back.components["root.train"]["vars"]["step"] == 7 and back.stage == "stopped"
    segments = sorted((tmp_path / ".lightnb/apps/exp1/segments").iterdir())
    assert len(segments) < 7  # folded into the snapshot as they went


def test_what_a_killed_writer_left_half_done_is_ignored(tmp_path):
    root = Root()
    record = recorded(tmp_path, root)
    folder = tmp_path / ".lightnb/apps/exp1"
    (folder / "segments").mkdir()
    root.train.step = 5
    record.write_json("segments/000000000001.json", {"seq": 1, "components": tree_records(root)})
    # A writer killed mid-write leaves its temporary file, never renamed into place.
    (folder / "segments" / ".000000000002.json.3f2a.lightnb-tmp").write_text('{"seq": 2, "compo')
    assert record.read().components["root.train"]["vars"]["step"] == 5


@pytest.mark.parametrize("damage, message", [
    (lambda folder: (folder / "snapshot.json").write_text('{"seq": 0, "comp'), "is corrupt"),
    (lambda folder: (folder / "meta.json").write_text(json.dumps({"format": 99})), "record format is 99"),
    (lambda folder: (folder / "snapshot.json").unlink() or (folder / "meta.json").unlink(), "no meta.json"),
])
def test_a_damaged_record_is_a_clear_error_and_nothing_is_deleted(tmp_path, damage, message):
    recorded(tmp_path, Root())
    folder = tmp_path / ".lightnb/apps/exp1"
    damage(folder)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(RecordError, match=message) as error:
        AppRecord(str(tmp_path), "exp1").read()
    assert "exp1" in str(error.value) and str(folder) in str(error.value)
    assert sorted(p.name for p in folder.iterdir()) == before


def test_records_are_listed_and_deleted_by_name(tmp_path):
    recorded(tmp_path, Root(), "exp1")
    recorded(tmp_path, Root(), "exp2")
    assert [found.name for found in list_records(str(tmp_path))] == ["exp1", "exp2"]
    AppRecord(str(tmp_path), "exp1").delete()
    assert [found.name for found in list_records(str(tmp_path))] == ["exp2"]
    with pytest.raises(RecordError, match="no app record named exp1"):
        AppRecord(str(tmp_path), "exp1").delete()
    with pytest.raises(RecordError, match="cannot name an app's record"):
        AppRecord(str(tmp_path), "../escape")
