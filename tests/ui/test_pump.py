"""The UI pump: one thread writes every view, coalescing a view's changes to at most 10 flushes a second."""

from __future__ import annotations

import itertools
import threading
import time

from lightnb.ui.pump import Pump


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.flushes: list[tuple[float, str]] = []
        self.fail = fail

    def flush(self) -> None:
        self.flushes.append((time.monotonic(), threading.current_thread().name))
        if self.fail:
            raise RuntimeError("a broken view")


def test_marks_from_many_threads_are_coalesced_on_one_thread():
    pump = Pump(rate=10)
    view = Recorder()

    def storm():
        for _ in range(500):
            pump.mark(view)
            time.sleep(0.002)

    threads = [threading.Thread(target=storm) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(0.3)
    seconds = time.monotonic() - started
    pump.stop()
    assert {name for _, name in view.flushes} == {"lightnb-ui-pump"}
    assert 1 <= len(view.flushes) <= 10 * seconds + 2, (len(view.flushes), seconds)
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(view.flushes)]
    assert all(gap >= 0.05 for gap in gaps), gaps  # flushes of a view are 1/rate apart (with slack for load)


def test_tasks_run_in_order_and_a_broken_view_does_not_stop_the_others():
    pump = Pump(rate=10)
    broken, healthy = Recorder(fail=True), Recorder()
    order: list[int] = []
    for index in range(5):
        pump.call(lambda index=index: order.append(index))
    pump.mark(broken)
    pump.mark(healthy)
    pump.run_sync(lambda: None)
    deadline = time.monotonic() + 5
    while not healthy.flushes and time.monotonic() < deadline:
        time.sleep(0.01)
    pump.stop()
    assert order == [0, 1, 2, 3, 4]
    assert broken.flushes and healthy.flushes


def test_an_idle_pump_waits_without_waking():
    pump = Pump(rate=10)
    view = Recorder()
    pump.mark(view)
    time.sleep(0.5)
    pump.stop()
    assert len(view.flushes) == 1  # one mark, one flush, then nothing until marked again
