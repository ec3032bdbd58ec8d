"""The engine's decisions, driven synchronously: events in, instructions out, a fresh state per test.

No thread, no clock, no cluster: each test hands :class:`EngineState` the events a running app would produce
(a work's batches, a cell's set, a stop) at times of its choosing, and checks the instructions and the state.
"""

from __future__ import annotations

import pytest

from lightnb import LightningFlow, LightningWork
from lightnb.core.calls import WorkStageStatus as S
from lightnb.core.engine import EngineState
from lightnb.core.events import (
    Advance,
    Again,
    AppStage,
    CallLost,
    Closed,
    Ended,
    Ending,
    EndRequested,
    LogEntry,
    Notify,
    Push,
    RuntimeReady,
    SetEntry,
    Started,
    StatusEntry,
    StepRequested,
    StopCall,
    Submit,
    WorkBatch,
    WorksQuiet,
)


class Train(LightningWork):
    def __init__(self, parallel=True, raise_exception=True):
        super().__init__(parallel=parallel, raise_exception=raise_exception)
        self.loss = None
        self.lr = 0.1

    def run(self, epochs=1):
        raise AssertionError("the engine never executes a work")


class Root(LightningFlow):
    def __init__(self, parallel=True, raise_exception=True):
        super().__init__()
        self.train = Train(parallel=parallel, raise_exception=raise_exception)
        self.other = Train()
        self.seen = []
        self.passes_after_train = 0

    def run(self):
        self.train.run(epochs=2)
        self.passes_after_train += 1
        if self.train.loss is not None and self.train.loss not in self.seen:
            print(f"loss {self.train.loss}")
            self.seen = [*self.seen, self.train.loss]
        if self.train.has_succeeded:
            self.stop("trained")


def of(kind, instructions):
    return [i for i in instructions if isinstance(i, kind)]


def started(root=None, **kwargs) -> tuple[EngineState, list]:
    engine = EngineState(root or Root(), **kwargs)
    return engine, engine.handle([Started(), RuntimeReady("test"), Advance()], now=1.0)


def batch(work, call_id, *entries, seq=1):
    return WorkBatch(work, call_id, seq, tuple(entries), worker="tcp://w1")


def running(engine) -> str:
    """Report that root.train's submitted call runs; its call id."""
    call_id = engine.works["root.train"]._calls.active.call_id
    engine.handle([batch("root.train", call_id, StatusEntry(S.RUNNING, timestamp=2.0)), Advance()], now=2.0)
    return call_id


def test_the_first_pass_submits_the_call_and_waits_for_the_executor():
    engine = EngineState(Root())
    out = engine.handle([Started(), Advance()], now=1.0)
    assert engine.passes == 1 and of(Submit, out) == []  # no executor yet: the call waits, pending
    assert engine.root.train.status.stage == "pending"
    out = engine.handle([RuntimeReady("test"), Advance()], now=1.5)
    [submit] = of(Submit, out)
    assert submit.work is engine.root.train and submit.call.kwargs == {"epochs": 2}
    assert submit.call.timestamp == 1.0  # the engine's times are the ones it was given


def test_streamed_values_reach_the_flow_in_order_and_the_success_ends_the_app():
    engine, _ = started()
    call_id = running(engine)
    out = engine.handle([batch("root.train", call_id, SetEntry("loss", 0.5), LogEntry("stdout", "epoch 1\n"),
                               SetEntry("loss", 0.25), seq=2), Advance()], now=3.0)
    assert engine.root.seen == [0.25]  # one pass after the batch: the latest value
    assert engine.logs["root.train"].lines() == ["epoch 1"] and "root" not in engine.logs  # not captured here
    [notify] = of(Notify, out)
    assert {"root.train"} <= notify.changes.state and notify.changes.logs == {"root.train"}
    out = engine.handle([batch("root.train", call_id, StatusEntry(S.SUCCEEDED, timestamp=4.0), seq=3),
                         Advance()], now=4.5)
    assert engine.root.train.status.timestamp == 4.0
    assert of(Ending, out) == [Ending(AppStage.STOPPED, "trained")]
    out = engine.handle([WorksQuiet(), Closed()], now=5.0)
    assert of(Ended, out) == [Ended(AppStage.STOPPED, "trained")] and engine.stage == "stopped"


def test_a_blocking_call_ends_the_pass_until_it_finished():
    engine, _ = started(Root(parallel=False))
    assert engine.root.passes_after_train == 0
    call_id = running(engine)
    assert engine.root.passes_after_train == 0
    engine.handle([batch("root.train", call_id, StatusEntry(S.SUCCEEDED, timestamp=3.0), seq=2), Advance()], 3.0)
    assert engine.root.passes_after_train == 1


def test_a_cells_value_is_pushed_to_the_running_work_between_passes():
    engine, _ = started()
    engine.root.train.lr = 0.5  # a cell, outside a pass: not running yet, so it waits
    assert of(Push, engine.outside_instructions + engine.handle([Advance()], 2.0)) == []
    call_id = running(engine)  # running now: the value goes out with the next advance
    engine.root.train.lr = 0.25
    out = engine.handle([Advance()], 3.0)
    [push] = of(Push, out)
    assert (push.work_name, push.call_id, push.values) == ("root.train", call_id, {"lr": 0.25})
    engine.root.train.lr = 0.125
    assert of(Push, engine.handle([Advance()], 4.0))[0].seq == push.seq + 1


def test_a_stop_overtakes_pending_values_and_reaches_the_work_where_it_runs():
    engine, _ = started()
    call_id = running(engine)
    engine.root.train.lr = 0.5
    engine.root.train.stop()  # a stop button
    out = engine.outside_instructions + engine.handle([Advance()], 3.0)
    assert of(StopCall, out) == [StopCall("root.train", call_id, started=True)] and of(Push, out) == []
    engine.handle([CallLost("root.train", call_id, "stopped by the app", "stop"), Advance()], 4.0)
    assert engine.root.train.has_stopped and engine.stage == "running"


def test_a_failed_work_fails_the_app_and_stops_the_others():
    engine, _ = started()
    call_id = running(engine)
    out = engine.handle([batch("root.train", call_id, StatusEntry(S.FAILED, "Traceback ...\nValueError: x",
                                                                  "user_exception", 3.0), seq=2)], 3.0)
    [ending] = of(Ending, out)
    assert ending.stage == "failed" and ending.message.startswith("root.train failed:\nTraceback")
    assert engine.failed_work == "root.train"
    out = engine.handle([Advance()], 3.5)  # ending: no pass, nothing shipped
    assert of(Submit, out) == [] and engine.passes == 2


def test_ending_stops_running_calls_and_marks_those_that_never_answered():
    engine, _ = started()
    call_id = running(engine)
    out = engine.handle([EndRequested(AppStage.STOPPED, "stopped by the user")], 3.0)
    assert of(StopCall, out) == [StopCall("root.train", call_id, started=True)] and not engine.quiet
    engine.handle([WorksQuiet(), Closed()], 9.0)  # the grace period ran out
    assert engine.root.train.has_stopped and "before the work reported" in engine.root.train.status.message
    assert engine.stage == "stopped" and engine.root._observer is None


def test_a_paused_app_passes_only_when_stepped():
    engine, _ = started(paused=True)
    assert engine.passes == 0
    engine.root.train.lr = 0.5
    assert of(Again, engine.handle([Advance()], 2.0)) == [] and engine.passes == 0
    engine.handle([StepRequested(), Advance()], 3.0)
    assert engine.passes == 1


def test_a_late_batch_of_an_ended_execution_changes_nothing_but_the_log():
    engine, _ = started()
    call_id = running(engine)
    engine.root.train.stop()
    engine.handle([CallLost("root.train", call_id, "stopped", "stop")], 3.0)
    engine.handle([batch("root.train", call_id, SetEntry("loss", 9.0), LogEntry("stdout", "late\n"),
                         StatusEntry(S.SUCCEEDED, timestamp=4.0), seq=2), Advance()], 4.0)
    assert engine.root.train.loss is None and engine.root.train.has_stopped
    assert engine.logs["root.train"].lines() == ["late"]


@pytest.mark.parametrize("paused", [False, True])
def test_replaying_the_journal_into_a_fresh_tree_gives_the_same_state(paused):
    journal = []
    engine, _ = started(paused=paused, journal=lambda now, event: journal.append((now, event)))
    step = [StepRequested()] if paused else []
    engine.handle([*step, Advance()], 1.5)
    call_id = running(engine)
    engine.handle([*step, Advance()], 2.5)
    engine.root.train.lr = 0.05  # a cell: journaled as a ValueSet
    engine.handle([batch("root.train", call_id, SetEntry("loss", 0.5), LogEntry("stdout", "e1\n"), seq=2),
                   *step, Advance()], 3.0)
    engine.root.other.run(epochs=5)  # a cell calling a work
    engine.handle([*step, Advance()], 3.5)
    engine.handle([batch("root.train", call_id, SetEntry("loss", 0.25), StatusEntry(S.SUCCEEDED, timestamp=4.0),
                         seq=3), *step, Advance()], 4.0)
    engine.handle([WorksQuiet(), Closed()], 5.0)
    assert engine.stage == "stopped" and engine.root.other.status.stage == "stopped"

    replayed = EngineState(Root(), paused=paused)
    for now, event in journal:
        replayed.handle([event], now)
    assert replayed.root.state == engine.root.state
    assert (replayed.stage, replayed.end_message, replayed.passes) == (engine.stage, engine.end_message,
                                                                      engine.passes)
    assert {name: buffer.lines() for name, buffer in replayed.logs.items()} == \
        {name: buffer.lines() for name, buffer in engine.logs.items()}
