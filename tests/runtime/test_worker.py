"""What runs where a work executes (lightnb.runtime.worker): the outbox of a running call, the works of a
process, and one call end to end — reported through an in-memory transport, read back as the app reads it."""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
import uuid

import cloudpickle
import pytest
from polling import wait_until as poll

from lightnb import LightningWork, WorkStageStatus
from lightnb.core.events import LogEntry, SetEntry
from lightnb.runtime.context import AppContext
from lightnb.runtime.worker import (
    REGISTRY,
    Link,
    Transport,
    WorkChannel,
    execute_call,
    forget_outbox,
    loads_batch,
    loads_batches,
    on_stop_requested,
    transport_with_outbox,
)


class Flushes:
    """Where a fake transport runs flushes. With ``manual``, they wait until :meth:`run_flushes` (a busy
    transport: what the work does meanwhile piles up); otherwise each runs at once, on the caller's thread."""

    def __init__(self, manual=False):
        self.scheduled = []
        self.manual = manual

    def _schedule(self, flush):
        if self.manual:
            self.scheduled.append(flush)
        else:
            flush()

    def run_flushes(self):
        pending, self.scheduled = self.scheduled, []
        for flush in pending:
            flush()


class Outbox(Flushes):
    """An in-memory transport of one call."""

    def __init__(self, manual=False):
        super().__init__(manual)
        self.batches = []
        self.transport = Transport(send=self._send, schedule=self._schedule, worker="test-worker")

    def _send(self, data):
        # As the app reads it (typed entries), written back in the wire's shape for short comparisons.
        batch = loads_batch(data)
        self.batches.append(dataclasses.replace(batch, entries=[_shape(entry) for entry in batch.entries]))

    @property
    def entries(self):
        return [entry for batch in self.batches for entry in batch.entries]

    def log(self, stream):
        return "".join(entry[2] for entry in self.entries if entry[:2] == ("log", stream))

    def statuses(self):
        return [entry[1] for entry in self.entries if entry[0] == "status"]

    def final(self):
        return [entry for entry in self.entries if entry[0] == "status"][-1]


def _shape(entry):
    if isinstance(entry, SetEntry):
        return ("set", entry.attribute, entry.value)
    if isinstance(entry, LogEntry):
        return ("log", entry.stream, entry.text)
    return ("status", entry.stage.value, entry.message, entry.reason, entry.timestamp)


def wait_until(predicate, timeout=10.0):
    poll(predicate, timeout)


def shapes(entries):
    """Entries without the status timestamp (the only part that differs between runs)."""
    return [entry[:4] if entry[0] == "status" else entry for entry in entries]


# -- the outbox of a running call -----------------------------------------------------------------------------
def test_a_lone_change_goes_out_at_once_and_batches_keep_the_order_of_changes():
    outbox = Outbox()
    channel = WorkChannel("root.work", "c1", outbox.transport)
    channel.set("a", 1)
    assert shapes(outbox.entries) == [("set", "a", 1)]
    channel.log("stdout", "hello\n")
    channel.set("b", 2)
    channel.status(WorkStageStatus.SUCCEEDED)
    assert shapes(outbox.entries) == [
        ("set", "a", 1), ("log", "stdout", "hello\n"), ("set", "b", 2), ("status", "succeeded", None, None),
    ]
    assert [batch.seq for batch in outbox.batches] == [1, 2, 3, 4]
    assert {(batch.work_name, batch.call_id, batch.worker) for batch in outbox.batches} == {
        ("root.work", "c1", "test-worker")}


def test_changes_faster_than_the_transport_are_merged_with_the_last_value_winning():
    outbox = Outbox(manual=True)
    channel = WorkChannel("root.work", "c1", outbox.transport)
    channel.set("x", 1)
    channel.set("y", "first")
    channel.set("x", 2)
    channel.set("x", 3)
    assert len(outbox.scheduled) == 1, "one flush pending at a time"
    outbox.run_flushes()
    assert [batch.entries for batch in outbox.batches] == [[("set", "x", 3), ("set", "y", "first")]]
    # After the flush, the next change schedules a new one.
    channel.set("x", 4)
    assert len(outbox.scheduled) == 1
    outbox.run_flushes()
    assert outbox.batches[-1].entries == [("set", "x", 4)]


def test_a_set_after_a_status_is_never_merged_into_a_set_before_it():
    outbox = Outbox(manual=True)
    channel = WorkChannel("root.work", "c1", outbox.transport)
    channel.set("progress", 1)
    channel.status(WorkStageStatus.RUNNING)
    channel.set("progress", 2)
    channel.set("progress", 3)
    outbox.run_flushes()
    # The flow sees progress=1 before "running", and the last value after it.
    assert shapes(outbox.entries) == [
        ("set", "progress", 1), ("status", "running", None, None), ("set", "progress", 3)]


def test_log_text_of_one_stream_is_joined_until_another_entry_comes_between():
    outbox = Outbox(manual=True)
    channel = WorkChannel("root.work", "c1", outbox.transport)
    channel.log("stdout", "epoch 1")
    channel.log("stdout", " done\n")
    channel.log("stderr", "warning\n")
    channel.log("stdout", "epoch 2\n")
    channel.set("epoch", 2)
    channel.log("stdout", "saved\n")
    outbox.run_flushes()
    assert outbox.entries == [
        ("log", "stdout", "epoch 1 done\n"), ("log", "stderr", "warning\n"), ("log", "stdout", "epoch 2\n"),
        ("set", "epoch", 2), ("log", "stdout", "saved\n"),
    ]


def test_a_list_is_sent_as_it_was_when_set_not_as_the_work_changed_it_later():
    outbox = Outbox(manual=True)
    channel = WorkChannel("root.work", "c1", outbox.transport)
    items = [1]
    channel.set("items", items)
    items.append(2)
    outbox.run_flushes()
    assert outbox.entries == [("set", "items", [1])]


def test_a_value_that_cannot_be_pickled_is_reported_and_the_rest_of_the_batch_arrives():
    outbox = Outbox(manual=True)
    channel = WorkChannel("root.work", "c1", outbox.transport)
    channel.log("stdout", "before\n")
    channel.set("handle", threading.Lock())
    channel.status(WorkStageStatus.SUCCEEDED)
    outbox.run_flushes()
    entries = outbox.entries
    assert not [entry for entry in entries if entry[0] == "set"]
    assert entries[0] == ("log", "stdout", "before\n")
    assert shapes([entries[1]]) == [("status", "succeeded", None, None)]
    assert entries[2][:2] == ("log", "stderr")
    assert "could not send the state of root.work" in entries[2][2]
    assert "lock" in entries[2][2]


# -- the outbox shared by the calls of one app in a process ------------------------------------------------------
class SharedOutbox(Flushes):
    """Messages as a worker process sends them for one app, read back as the app reads them (``manual``: a
    busy worker loop)."""

    def __init__(self, manual=False):
        super().__init__(manual)
        self.messages = []
        self._lock = threading.Lock()
        self.topic = f"lightnb-events-test-{uuid.uuid4().hex[:8]}"

    def transport(self):
        return transport_with_outbox(("test-worker", self.topic), lambda: Link(self._send, self._schedule),
                                     "test-worker")

    def _send(self, data):
        with self._lock:
            self.messages.append(loads_batches(data))

    def batches_of(self, call_id):
        return [batch for message in self.messages for batch in message if batch.call_id == call_id]

    def close(self):
        forget_outbox(self.topic)


def test_the_calls_of_one_app_in_a_process_share_one_outbox_one_message_per_flush():
    shared = SharedOutbox(manual=True)
    try:
        channels = [WorkChannel(f"root.works.{i}", f"c{i}", shared.transport()) for i in range(100)]
        for value in range(1, 6):
            for channel in channels:
                channel.set("counter", value)
                channel.log("stdout", f"{value}\n")
            assert len(shared.scheduled) == 1, "one flush pending for all the calls"
            shared.run_flushes()
        for channel in channels:
            channel.status(WorkStageStatus.SUCCEEDED)
        channels[0].flush()  # a call's final flush sends what every call has pending
        assert len(shared.messages) == 6, "100 calls × 6 batches went out as 6 messages"
        for index, channel in enumerate(channels):
            batches = shared.batches_of(f"c{index}")
            assert [batch.seq for batch in batches] == [1, 2, 3, 4, 5, 6]
            assert {(batch.work_name, batch.worker) for batch in batches} == {(f"root.works.{index}", "test-worker")}
            entries = [_shape(entry) for batch in batches for entry in batch.entries]
            assert [e for e in entries if e[0] == "set"] == [("set", "counter", v) for v in range(1, 6)]
            assert "".join(e[2] for e in entries if e[0] == "log") == "1\n2\n3\n4\n5\n"
            assert shapes([entries[-1]]) == [("status", "succeeded", None, None)]
            assert channel.batches_sent == 6
    finally:
        shared.close()


def test_a_lone_change_of_a_call_sharing_the_outbox_goes_out_at_once():
    shared = SharedOutbox()
    try:
        channel = WorkChannel("root.work", "c1", shared.transport())
        channel.set("a", 1)
        assert [[(b.call_id, b.seq, [_shape(e) for e in b.entries]) for b in m] for m in shared.messages] == [
            [("c1", 1, [("set", "a", 1)])]]
    finally:
        shared.close()


def test_a_value_that_cannot_be_pickled_spoils_only_its_own_calls_batch_in_a_shared_message():
    shared = SharedOutbox(manual=True)
    try:
        good = WorkChannel("root.good", "g1", shared.transport())
        bad = WorkChannel("root.bad", "b1", shared.transport())
        good.set("value", 7)
        bad.set("handle", threading.Lock())
        bad.set("other", 1)
        shared.run_flushes()
        [message] = shared.messages
        assert [_shape(e) for e in shared.batches_of("g1")[0].entries] == [("set", "value", 7)]
        [bad_batch] = shared.batches_of("b1")
        assert [e for e in bad_batch.entries if isinstance(e, SetEntry)] == []
        assert "could not send the state of root.bad" in bad_batch.entries[-1].text
    finally:
        shared.close()


def test_calls_setting_at_once_on_their_threads_keep_every_batch_in_order_and_their_last_values():
    """As on a worker: each call sets from its own thread, flushes run on one other thread (the worker's
    loop), and each call's final flush runs on its own thread."""
    shared = SharedOutbox(manual=True)
    loop_work = []
    loop_wake = threading.Condition()
    stop = threading.Event()

    def schedule(flush):
        with loop_wake:
            loop_work.append(flush)
            loop_wake.notify()

    def worker_loop():
        while not stop.is_set():
            with loop_wake:
                loop_wake.wait_for(lambda: loop_work or stop.is_set(), timeout=0.1)
                pending = list(loop_work)
                loop_work.clear()
            for flush in pending:
                flush()

    shared._schedule = schedule
    loop = threading.Thread(target=worker_loop, daemon=True)
    loop.start()

    def call(index):
        channel = WorkChannel(f"root.works.{index}", f"c{index}", shared.transport())
        for value in range(1, 301):
            channel.set("counter", value)
        channel.status(WorkStageStatus.SUCCEEDED)
        channel.flush()

    try:
        threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for index in range(20):
            batches = shared.batches_of(f"c{index}")
            assert [batch.seq for batch in batches] == list(range(1, len(batches) + 1)), "every batch, in order"
            sets = [e.value for batch in batches for e in batch.entries if isinstance(e, SetEntry)]
            assert sets == sorted(sets) and sets[-1] == 300
            assert shapes([_shape(batches[-1].entries[-1])]) == [("status", "succeeded", None, None)]
        total_batches = sum(len(message) for message in shared.messages)
        assert len(shared.messages) <= total_batches
    finally:
        stop.set()
        loop.join(5)
        shared.close()


# -- works, calls and the registry ----------------------------------------------------------------------------
class Counter(LightningWork):
    def __init__(self):
        super().__init__()
        self.count = 0
        self.steps = []

    def run(self, times=3):
        for _ in range(times):
            self.count += 1
            self.steps = self.steps + [self.count]


class Waits(LightningWork):
    """Runs until the flow sets ``go`` (pushed to it while it runs), then records what it saw."""

    def __init__(self):
        super().__init__(parallel=True)
        self.go = False
        self.seen = None
        self.started = False

    def run(self):
        self.started = True
        while not self.go:
            time.sleep(0.002)
            self.check_stop()
        self.seen = self.go


STOP_HEARD: dict[str, threading.Event] = {}  # app id → set by the work's stop callback (same process)


class ListensForStop(Waits):
    """Registers a stop callback, as a work that started a process does to end it."""

    def __init__(self, app_id):
        super().__init__()
        self.app_id = app_id

    def run(self):
        on_stop_requested(self, STOP_HEARD[self.app_id].set)
        super().run()


class Remembers(LightningWork):
    """Keeps a private attribute between calls, as a loaded model would be kept."""

    def __init__(self):
        super().__init__(cache_calls=False)
        self.loads = 0

    def run(self):
        if not hasattr(self, "_model"):
            self._model = object()
            self.loads += 1


class Returns(LightningWork):
    def run(self):
        return 42


class Fails(LightningWork):
    def run(self):
        raise ValueError("bad input")


def new_app():
    return f"test-{uuid.uuid4().hex[:8]}"


def payload(work, app_id, *args, **kwargs):
    return cloudpickle.dumps((work, args, kwargs, AppContext(app_id)))


def run_call(app_id, work, name="root.work", call_id=None, *args, **kwargs):
    outbox = Outbox()
    execute_call(app_id, name, call_id or uuid.uuid4().hex, payload(work, app_id, *args, **kwargs),
                 outbox.transport)
    return outbox


def start_call(app_id, work, name="root.work", call_id="c1"):
    outbox = Outbox()
    thread = threading.Thread(target=execute_call, daemon=True,
                              args=(app_id, name, call_id, payload(work, app_id), outbox.transport))
    thread.start()
    return outbox, thread


def test_a_call_reports_running_then_each_change_then_its_final_status_last():
    outbox = run_call(new_app(), Counter(), "root.counter", "c1", 3)
    assert outbox.statuses() == ["running", "succeeded"]
    assert shapes(outbox.entries) == [
        ("status", "running", None, None),
        ("set", "count", 1), ("set", "steps", [1]),
        ("set", "count", 2), ("set", "steps", [1, 2]),
        ("set", "count", 3), ("set", "steps", [1, 2, 3]),
        ("status", "succeeded", None, None),
    ]
    assert {batch.work_name for batch in outbox.batches} == {"root.counter"}


def test_a_work_that_returns_a_value_fails_with_a_message_saying_how_to_pass_results():
    outbox = run_call(new_app(), Returns())
    stage, message, reason = outbox.final()[1:4]
    assert (stage, reason) == ("failed", "invalid_return_value")
    assert "root.work.run() returned a value (int)" in message
    assert "self.result = ..." in message


def test_an_exception_fails_the_call_with_its_traceback():
    outbox = run_call(new_app(), Fails())
    stage, message, reason = outbox.final()[1:4]
    assert (stage, reason) == ("failed", "user_exception")
    assert "ValueError: bad input" in message
    assert 'raise ValueError("bad input")' in message


def test_a_payload_that_cannot_be_unpacked_fails_with_the_missing_module_named():
    class Missing:
        def __reduce__(self):
            # What a class from a module this worker does not have pickles to.
            return __import__, ("lightnb_no_such_module_for_tests",)

    outbox = Outbox()
    execute_call(new_app(), "root.model", "c1", cloudpickle.dumps((Missing(), (), {}, None)), outbox.transport)
    assert outbox.statuses() == ["running", "failed"]
    stage, message, reason = outbox.final()[1:4]
    assert reason == "unpickling"
    assert "root.model could not be unpacked on worker test-worker" in message
    assert "ModuleNotFoundError" in message
    assert "The worker cannot import 'lightnb_no_such_module_for_tests'" in message
    assert "Install it on the workers" in message


def test_values_pushed_to_a_running_work_reach_it_and_older_pushes_are_dropped():
    app_id = new_app()
    outbox, thread = start_call(app_id, Waits())
    wait_until(lambda: ("set", "started", True) in outbox.entries)
    REGISTRY.deliver(app_id, "root.work", "c1", 2, {"go": "second"})
    REGISTRY.deliver(app_id, "root.work", "c1", 1, {"go": "first"})  # overtaken: must not replace "second"
    REGISTRY.deliver(app_id, "root.work", "other-call", 3, {"go": "for another call"})
    thread.join(10)
    assert not thread.is_alive()
    assert ("set", "seen", "second") in outbox.entries
    assert outbox.statuses() == ["running", "succeeded"]


def test_a_stop_that_arrives_before_its_call_keeps_the_call_from_running():
    app_id = new_app()
    REGISTRY.stop(app_id, "root.work", "c1")
    outbox = run_call(app_id, Counter(), "root.work", "c1", 3)
    assert not [entry for entry in outbox.entries if entry[0] == "set"], "the work must not have run"
    assert outbox.statuses() == ["running", "stopped"]
    assert outbox.final()[2:4] == ("stopped before it started", "stop")
    # Only that call: the next one runs.
    again = run_call(app_id, Counter(), "root.work", "c2", 1)
    assert again.statuses() == ["running", "succeeded"]


def test_a_worker_process_keeps_its_heap_out_of_full_collections_only_while_calls_run():
    """In a worker process (not the user's kernel) a running call's heap is frozen out of Python's full
    collections, and unfrozen once no call runs, so ended calls' garbage is collected — whichever way a
    call ended, a stop that kept it from starting included."""
    # As in a worker process, where nothing else freezes (this test process may have frozen its heap when
    # an earlier test started an embedded cluster in it).
    gc.unfreeze()
    app_id = new_app()
    outbox = Outbox()
    in_worker = dataclasses.replace(outbox.transport, worker_process=True)
    REGISTRY.stop(app_id, "root.work", "c0")
    execute_call(app_id, "root.work", "c0", payload(Counter(), app_id, 1), in_worker)
    assert outbox.final()[2:4] == ("stopped before it started", "stop")
    assert gc.get_freeze_count() == 0
    thread = threading.Thread(target=execute_call, daemon=True,
                              args=(app_id, "root.work", "c1", payload(Waits(), app_id), in_worker))
    thread.start()
    wait_until(lambda: ("set", "started", True) in outbox.entries)
    assert gc.get_freeze_count() > 0
    REGISTRY.deliver(app_id, "root.work", "c1", 1, {"go": "yes"})
    thread.join(10)
    assert outbox.statuses()[-1] == "succeeded"
    assert gc.get_freeze_count() == 0


def test_a_stop_of_a_running_call_ends_it_as_stopped_and_runs_its_stop_callbacks():
    app_id = new_app()
    heard = STOP_HEARD[app_id] = threading.Event()
    outbox, thread = start_call(app_id, ListensForStop(app_id))
    wait_until(lambda: ("set", "started", True) in outbox.entries)
    REGISTRY.stop(app_id, "root.work", "c1")
    thread.join(10)
    assert heard.is_set()
    assert outbox.statuses() == ["running", "stopped"]
    assert outbox.final()[2:4] == ("stopped by the app", "stop")


def test_a_work_keeps_its_private_attributes_between_calls_until_its_app_is_forgotten():
    app_id = new_app()
    first = run_call(app_id, Remembers())
    second = run_call(app_id, Remembers())
    assert ("set", "loads", 1) in first.entries
    assert not [entry for entry in second.entries if entry[0] == "set"], "the model was kept: not loaded again"
    REGISTRY.forget_app(app_id)
    third = run_call(app_id, Remembers())
    assert ("set", "loads", 1) in third.entries


def test_forgetting_an_app_drops_its_early_stops_and_leaves_other_apps_alone():
    app_id, other = new_app(), new_app()
    REGISTRY.stop(app_id, "root.work", "c1")
    REGISTRY.stop(other, "root.work", "c1")
    REGISTRY.forget_app(app_id)
    assert run_call(app_id, Counter(), "root.work", "c1", 1).statuses() == ["running", "succeeded"]
    assert run_call(other, Counter(), "root.work", "c1", 1).statuses() == ["running", "stopped"]


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_what_a_work_prints_goes_to_its_log(stream):
    import sys

    class Prints(LightningWork):
        def run(self):
            print("from the work", file=getattr(sys, stream))

    outbox = run_call(new_app(), Prints())
    assert outbox.log(stream) == "from the work\n"
