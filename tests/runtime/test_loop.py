"""The app's loop (the shell around the engine) running apps end to end, on a real Dask cluster: worker
processes, shared by the module's apps (an app given a cluster it did not create leaves it running).

The engine's decisions themselves are tested synchronously, event by event, in tests/core/test_engine.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from lightnb import AppFailed, LightningApp, LightningFlow, LightningWork


@pytest.fixture(autouse=True)
def on_the_cluster(cluster):
    """Apps of these tests, created with no cluster argument, run on the module's cluster."""
    from lightnb.runtime.cluster import set_default_cluster

    set_default_cluster(cluster)
    yield
    set_default_cluster(None)


class Echo(LightningWork):
    """Records what it was called with; waits for `release` before finishing when asked to."""

    def __init__(self, parallel=False, cache_calls=True, raise_exception=True, hold=False):
        super().__init__(parallel=parallel, cache_calls=cache_calls, raise_exception=raise_exception)
        self.calls = []
        self.release = not hold

    def run(self, value=None):
        self.calls = self.calls + [value]
        while not self.release:
            time.sleep(0.005)
            self.check_stop()


def run_app(root, timeout=20, **kwargs):
    app = LightningApp(root, **kwargs)
    app.start()
    app.wait(timeout)
    return app


def test_blocking_call_ends_the_flow_pass_until_it_finished():
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Echo()
            self.after = []

        def run(self):
            self.work.run("x")
            # Only reached once the blocking call has finished.
            self.after.append(self.work.status.stage.value)
            self.stop()

    app = run_app(Root())
    assert app.root.after == ["succeeded"]
    assert app.root.work.calls == ["x"]


def test_parallel_call_returns_at_once_and_identical_calls_are_sent_once():
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Echo(parallel=True, hold=True)
            self.stages_seen = []

        def run(self):
            self.work.run(1)
            self.work.run(1)
            if self.stages_seen[-1:] != [self.work.status.stage.value]:
                self.stages_seen = self.stages_seen + [self.work.status.stage.value]
            if self.work.is_running:
                self.work.release = True  # flow → work
            if self.work.has_succeeded:
                self.stop()

    app = run_app(Root())
    # The first pass went on with the call pending (a blocking call would have waited for "succeeded").
    assert app.root.stages_seen == ["pending", "running", "succeeded"]
    assert app.root.work.calls == [1]


def test_cache_calls_false_runs_again_and_new_arguments_queue_in_order():
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Echo(parallel=True, cache_calls=False)
            self.sent = 0

        def run(self):
            if self.sent < 3 and not self.work.is_pending and not self.work.is_running:
                self.work.run(self.sent)
                self.sent += 1
            elif self.sent == 3 and self.work.has_succeeded:
                self.stop()

    app = run_app(Root())
    # Each call starts from the state the previous calls left.
    assert app.root.work.calls == [0, 1, 2]


def test_queued_calls_run_one_at_a_time_with_state_carried_over():
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Echo(parallel=True)
            self.sent = False

        def run(self):
            if not self.sent:
                for value in ("a", "b", "c"):
                    self.work.run(value)
                self.sent = True
            if len(self.work.calls) == 3 and self.work.has_succeeded:
                self.stop()

    app = run_app(Root())
    assert app.root.work.calls == ["a", "b", "c"]


def test_failed_work_fails_the_app_with_its_traceback():
    class Broken(LightningWork):
        def run(self):
            raise ValueError("the data is bad")

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Broken()

        def run(self):
            self.work.run()

    app = LightningApp(Root())
    app.start()
    with pytest.raises(AppFailed, match=r"(?s)root\.work failed.*ValueError: the data is bad") as failure:
        app.wait(10)
    assert failure.value.work_name == "root.work"
    assert 'raise ValueError("the data is bad")' in str(failure.value)
    assert "lightnb/runtime" not in str(failure.value), "lightnb's own frames are not shown"
    assert app.stage == "failed"
    assert app.root.work.has_failed


def test_failed_blocking_work_without_raise_exception_lets_the_flow_react():
    class Broken(LightningWork):
        def __init__(self):
            super().__init__(raise_exception=False)

        def run(self):
            raise RuntimeError("nope")

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Broken()
            self.reacted = False

        def run(self):
            self.work.run()
            if self.work.has_failed:
                self.reacted = True
                self.stop("handled")

    app = run_app(Root())
    assert app.root.reacted and app.stage == "stopped" and app.end_message == "handled"
    assert "RuntimeError: nope" in app.root.work.status.message


def test_flow_exception_and_flow_fail_end_the_app_as_failed():
    class Raises(LightningFlow):
        def run(self):
            {}["missing"]

    app = LightningApp(Raises()).start()
    with pytest.raises(AppFailed, match=r"(?s)root failed.*KeyError: 'missing'"):
        app.wait(10)

    class Fails(LightningFlow):
        def run(self):
            self.fail("gave up")

    app = LightningApp(Fails()).start()
    with pytest.raises(AppFailed, match="gave up"):
        app.wait(10)


def test_a_failing_nested_flow_is_named_and_a_state_rule_error_ends_at_the_users_line():
    class Child(LightningFlow):
        def __init__(self):
            super().__init__()
            self.count = 0

        def run(self):
            self.count += 1
            if self.count == 2:
                self.undeclared = True  # the state rule refuses it

    class Parent(LightningFlow):
        def __init__(self):
            super().__init__()
            self.child = Child()
            self.ticks = 0

        def run(self):
            self.child.run()
            self.ticks += 1

    app = LightningApp(Parent()).start()
    with pytest.raises(AppFailed) as failure:
        app.wait(10)
    message = str(failure.value)
    assert message.startswith("root.child failed:\nTraceback")  # the flow whose run() raised, not the root
    frames = [line for line in message.splitlines() if line.lstrip().startswith("File ")]
    assert frames[-1].endswith(", in run") and "self.undeclared = True" in message
    assert "component.py" not in message and "values.py" not in message  # lightnb's own checks are not shown
    assert message.rstrip().endswith("that is not state.")


def test_flow_and_work_output_is_captured_per_component():
    class Child(LightningFlow):
        def run(self):
            print("from the child")

    class Printer(LightningWork):
        def run(self):
            print("from the work")

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.child = Child()
            self.work = Printer()

        def run(self):
            print("from the root")
            self.child.run()
            self.work.run()
            self.stop()

    app = run_app(Root())
    assert set(app.logs("root")) == {"from the root"}
    assert set(app.logs("root.child")) == {"from the child"}
    assert app.logs("root.work") == ["from the work"]


def test_return_value_from_run_fails_the_work_with_a_hint():
    class Returns(LightningWork):
        def run(self):
            return 42

    app = LightningApp(Returns()).start()
    with pytest.raises(AppFailed, match=r"returned a value \(int\).*Payload"):
        app.wait(10)


def test_unpicklable_argument_is_named():
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Echo()

        def run(self):
            self.work.run(threading.Lock())

    app = LightningApp(Root()).start()
    with pytest.raises(AppFailed, match=r"argument 0 of root\.work\.run\(\) \(_thread\.lock\) cannot be pickled"):
        app.wait(10)


def test_values_set_from_another_thread_reach_the_flow_between_passes():
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.target = 0
            self.seen = []

        def run(self):
            if not self.seen or self.seen[-1] != self.target:
                self.seen.append(self.target)
            if self.target == 3:
                self.stop()

    app = LightningApp(Root()).start()
    for value in (1, 2, 3):
        time.sleep(0.02)
        app.root.target = value  # a notebook cell
    app.wait(10)
    assert app.root.seen[-1] == 3
    assert app.root.seen == sorted(app.root.seen)


def test_flow_sets_on_a_running_work_reach_it_and_work_sets_reach_the_flow_in_order():
    class Streamer(LightningWork):
        def __init__(self):
            super().__init__(parallel=True)
            self.items = []
            self.go_on = True

        def run(self):
            while self.go_on:
                if len(self.items) < 200:
                    self.items.append(len(self.items))
                time.sleep(0.001)

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Streamer()
            self.observed = []

        def run(self):
            self.work.run()
            self.observed.append(len(self.work.items))
            if len(self.work.items) == 200:
                self.work.go_on = False
            if self.work.has_succeeded:
                self.stop()

    app = run_app(Root())
    assert app.root.work.items == list(range(200))
    assert app.root.observed == sorted(app.root.observed), "changes arrive in order"


def test_paused_app_steps_exactly_once_per_step():
    class Counter(LightningFlow):
        def __init__(self):
            super().__init__()
            self.passes = 0

        def run(self):
            self.passes += 1  # a state change: an unpaused app would step again at once

    app = LightningApp(Counter())
    app.start(paused=True)
    time.sleep(0.1)
    assert app.root.passes == 0
    for expected in (1, 2, 3):
        app.step()
        assert app.root.passes == expected
    app.stop()
    assert app.stage == "stopped"


def test_stop_stops_running_works_and_runs_on_exit_where_they_ran(tmp_path):
    marker = tmp_path / "exit"

    class Forever(LightningWork):
        def __init__(self):
            super().__init__(parallel=True)
            self.ticks = 0
            self.pid = 0

        def run(self):
            self.pid = os.getpid()
            while True:
                self.ticks += 1
                time.sleep(0.01)

        def on_exit(self):
            marker.write_text(str(os.getpid()))

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Forever()

        def run(self):
            self.work.run()

    app = LightningApp(Root()).start()
    deadline = time.time() + 10
    while app.root.work.ticks < 3 and time.time() < deadline:
        time.sleep(0.01)
    app.stop()
    assert app.stage == "stopped"
    assert app.root.work.has_stopped
    assert marker.read_text() == str(app.root.work.pid) != str(os.getpid()), "on_exit runs where the work ran"
    app.stop()  # a no-op on an ended app


def test_work_stop_from_the_flow_stops_only_that_work():
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.a = Echo(parallel=True, hold=True)
            self.b = Echo(parallel=True, hold=True)

        def run(self):
            self.a.run()
            self.b.run()
            if self.a.is_running and self.b.is_running:
                self.a.stop()
            if self.a.has_stopped:
                self.b.release = True
            if self.b.has_succeeded:
                self.stop()

    app = run_app(Root())
    assert app.root.a.has_stopped and app.root.b.has_succeeded


def test_several_apps_run_at_once_in_one_process():
    class Root(LightningFlow):
        def __init__(self, n):
            super().__init__()
            self.n = n
            self.work = Echo()

        def run(self):
            self.work.run(self.n)
            self.stop()

    apps = [LightningApp(Root(n)).start() for n in range(4)]
    for app in apps:
        app.wait(10)
    assert [app.root.work.calls for app in apps] == [[0], [1], [2], [3]]


def test_wait_timeout_and_wait_async():
    class Waits(LightningFlow):
        def __init__(self):
            super().__init__()
            self.done = False

        def run(self):
            if self.done:
                self.stop()

    app = LightningApp(Waits()).start()
    with pytest.raises(TimeoutError, match="still running"):
        app.wait(0.05)
    assert app.stage == "running"

    async def main():
        threading.Timer(0.1, lambda: setattr(app.root, "done", True)).start()
        await app.wait_async(10)

    asyncio.run(main())
    assert app.stage == "stopped"


def test_interrupting_wait_interrupts_the_wait_not_the_app():
    class Idle(LightningFlow):
        def run(self):
            pass

    app = LightningApp(Idle()).start()
    threading.Timer(0.1, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        app.wait(10)
    assert app.stage == "running"
    app.stop()
    assert app.stage == "stopped"


def test_app_state_is_a_consistent_copy():
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.items = [1]
            self.work = Echo()

        def run(self):
            pass

    app = LightningApp(Root()).start()
    snapshot = app.state
    snapshot["vars"]["items"].append(2)
    assert app.root.items == [1]
    assert snapshot["works"]["work"]["vars"] == {"calls": [], "release": True}
    app.stop()


def test_dynamic_works_added_in_run_are_dispatched():
    from lightnb.structures import List

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.trials = List()

        def run(self):
            if len(self.trials) < 3:
                self.trials.append(Echo(parallel=True))
            for index, trial in enumerate(self.trials):
                trial.run(index)
            if len(self.trials) == 3 and all(t.has_succeeded for t in self.trials):
                self.stop()

    app = run_app(Root())
    assert [t.calls for t in app.root.trials] == [[0], [1], [2]]
    assert app.root.trials[2].name == "root.trials.2"


def test_an_app_of_a_single_work_runs_it_once():
    work = Echo()
    app = run_app(work)
    assert app.stage == "stopped" and work.calls == [None]


def test_root_must_be_a_flow_with_run():
    class NoRun(LightningFlow):
        pass

    with pytest.raises(TypeError, match="must define run"):
        LightningApp(NoRun())
    with pytest.raises(TypeError, match="LightningFlow"):
        LightningApp(object())  # type: ignore[arg-type]


def test_after_an_expensive_pass_events_gather_for_as_long_as_it_took_before_the_next_one():
    from lightnb.runtime.loop import GATHER_FROM_SECONDS, GATHER_MAX_SECONDS, gather_seconds

    assert gather_seconds(None) == 0.0, "an iteration without a pass: the next event is handled at once"
    assert gather_seconds(GATHER_FROM_SECONDS / 2) == 0.0, "a small app's pass: no added latency"
    assert gather_seconds(0.004) == 0.004, "a 4 ms pass: the loop spends at most about half its time in passes"
    assert gather_seconds(5.0) == GATHER_MAX_SECONDS, "never longer than the cap, however long the pass"
