"""The work-call decision table, driven synchronously: no app, no cluster."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lightnb.core.calls import CallTable, WorkStageStatus, call_hash

S = WorkStageStatus


def request(table: CallTable, h: str, *, cache_calls: bool = True, parallel: bool = False):
    return table.request(h, (), {}, cache_calls=cache_calls, parallel=parallel, now=1.0)


def run_to_end(table: CallTable, stage: WorkStageStatus = S.SUCCEEDED) -> str:
    call = table.take_next()
    assert call is not None
    assert table.on_running(call.call_id, 2.0)
    assert table.on_finished(call.call_id, stage, 3.0, "boom" if stage is S.FAILED else None)
    return call.call_id


@pytest.mark.parametrize("parallel", [False, True])
def test_unseen_arguments_dispatch_and_block_unless_parallel(parallel):
    table = CallTable()
    decision = request(table, "a", parallel=parallel)
    assert decision.dispatch
    assert decision.block is (not parallel)
    assert table.status.stage == "pending"


@pytest.mark.parametrize("parallel", [False, True])
def test_pending_or_running_call_is_not_sent_again(parallel):
    table = CallTable()
    request(table, "a", parallel=parallel)
    assert not request(table, "a", parallel=parallel).dispatch
    call = table.take_next()
    table.on_running(call.call_id, 2.0)
    again = request(table, "a", parallel=parallel)
    assert not again.dispatch and again.block is (not parallel)
    assert table.status.stage == "running"


@pytest.mark.parametrize("stage", [S.SUCCEEDED, S.FAILED, S.STOPPED])
def test_finished_call_with_cache_calls_is_not_rerun_and_does_not_block(stage):
    table = CallTable()
    request(table, "a")
    run_to_end(table, stage)
    decision = request(table, "a")
    # The reference stalled a flow forever on a failed blocking call: a finished call unblocks, whatever
    # its outcome, and the flow reacts to has_failed / has_stopped.
    assert decision == type(decision)(dispatch=False, block=False)
    assert table.status.stage == stage


def test_finished_call_without_cache_calls_runs_again_as_a_new_attempt():
    table = CallTable()
    request(table, "a", cache_calls=False)
    first = run_to_end(table)
    decision = request(table, "a", cache_calls=False)
    assert decision.dispatch and decision.block
    assert table.status.stage == "pending"
    second = table.take_next().call_id
    assert second != first
    # Events of the first attempt no longer touch the call.
    assert not table.on_running(first, 5.0)
    assert table.on_running(second, 5.0)


def test_different_arguments_queue_and_execute_one_at_a_time_in_order():
    table = CallTable()
    for h in ("a", "b", "c"):
        assert request(table, h, parallel=True).dispatch
    order = []
    while (call := table.take_next()) is not None:
        assert table.take_next() is None, "a work executes one call at a time"
        order.append(call.call_hash)
        table.on_running(call.call_id, 1.0)
        table.on_finished(call.call_id, S.SUCCEEDED, 2.0)
    assert order == ["a", "b", "c"]


def test_status_describes_the_latest_call():
    table = CallTable()
    request(table, "a", parallel=True)
    run_to_end(table, S.FAILED)
    assert table.status.stage == "failed" and table.status.message == "boom"
    request(table, "b", parallel=True)
    assert table.status.stage == "pending"
    request(table, "a", parallel=True)
    assert table.status.stage == "failed"


def test_first_final_report_wins():
    table = CallTable()
    request(table, "a")
    call = table.take_next()
    assert table.on_finished(call.call_id, S.STOPPED, 2.0, "stopped")
    assert not table.on_finished(call.call_id, S.FAILED, 3.0, "late failure")
    assert table.status.stage == "stopped"


def test_stop_all_ends_queued_calls_and_returns_the_active_one():
    table = CallTable()
    for h in ("a", "b"):
        request(table, h, parallel=True)
    active = table.take_next()
    table.on_running(active.call_id, 1.0)
    running, ended = table.stop_all(2.0)
    assert running is active
    assert [c.call_hash for c in ended] == ["b"]
    assert table.calls["b"].stage == "stopped"
    assert table.take_next() is None


@pytest.mark.parametrize("stage", [S.SUCCEEDED, S.FAILED])
def test_stop_after_the_call_finished_leaves_the_work_stopped(stage):
    table = CallTable()
    request(table, "a")
    call = table.take_next()
    table.on_running(call.call_id, 1.0)
    table.on_finished(call.call_id, stage, 2.0, "boom" if stage is S.FAILED else None)
    assert table.stop(3.0) == (None, True)
    assert table.status.stage == "stopped" and table.status.reason == "stop"
    assert f"after the call had {stage.value}" in table.status.message
    assert table.stop(4.0) == (None, False)  # stopping again changes nothing
    assert not request(table, "a").dispatch  # cache_calls: a stopped call is not run again


def test_a_call_that_finishes_before_the_stop_reaches_it_ends_stopped():
    table = CallTable()
    request(table, "a")
    call = table.take_next()
    table.on_running(call.call_id, 1.0)
    assert table.stop(2.0) == (call, False)  # to interrupt where it runs
    assert table.on_finished(call.call_id, S.SUCCEEDED, 3.0)  # its success crossed the stop
    assert table.status.stage == "stopped" and "after the call had succeeded" in table.status.message


def test_stop_before_any_call_leaves_the_work_stopped_until_it_is_called():
    table = CallTable()
    assert table.stop(1.0) == (None, True)
    assert table.status.stage == "stopped"
    assert request(table, "a").dispatch
    assert table.status.stage == "pending"


def test_stage_is_a_str_enum():
    assert S.RUNNING == "running"
    assert str(S.FAILED) == "failed"
    assert {s.value for s in S} == {"not_started", "pending", "running", "succeeded", "failed", "stopped"}


def test_call_hash_is_stable_and_ignores_keyword_and_dict_order():
    assert call_hash((1, {"b": 2, "a": 1}), {"x": 1, "y": 2}) == call_hash((1, {"a": 1, "b": 2}), {"y": 2, "x": 1})
    assert call_hash((1,), {}) != call_hash((2,), {})
    assert call_hash((), {"value": 1}) != call_hash((1,), {})
    here = call_hash((1, [2], (3, 4), {"1": "3"}), {"lr": 0.1})
    script = "from lightnb.core.calls import call_hash; print(call_hash((1, [2], (3, 4), {'1': '3'}), {'lr': 0.1}))"
    other_process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert other_process.stdout.strip() == here
