"""What the latency benchmarks share: works that set an attribute at a fixed rate, a flow that notes when it
sees each value, and the latency from a set to the first pass that saw it; a work that stamps when each call
starts, and a flow that calls it one call after another, noting when it asked."""

from __future__ import annotations

import time
from array import array

from lightnb import LightningFlow, LightningWork
from lightnb.structures import List


class Streamer(LightningWork):
    def __init__(self, period: float, duration: float) -> None:
        super().__init__(parallel=True)
        self.counter = 0
        self.sent: list[float] = []
        self._period, self._duration = period, duration

    def run(self) -> None:
        sent, end = [], time.time() + self._duration
        next_at = time.time()
        while time.time() < end:
            sent.append(time.time())
            self.counter = len(sent)
            next_at += self._period
            time.sleep(max(0.0, next_at - time.time()))
        self.sent = sent


class Observed:
    """When a flow pass first saw each new value of a work's counter, in two flat arrays made at their full
    size up front (16 bytes a value), so that a long soak's memory growth is lightnb's, not this record's
    (600 000 tuples would take ~80 MiB; arrays growing as they fill, ~0.9 MiB a minute at 100 works × 10 Hz).
    ``capacity``: the most values it keeps."""

    def __init__(self, capacity: int) -> None:
        self.counters = array("q", bytes(8 * capacity))
        self.times = array("d", bytes(8 * capacity))
        self.length = 0

    def note(self, counter: int, now: float) -> None:
        if self.length == len(self.counters):
            return  # full: more values than the run was to make
        if not self.length or self.counters[self.length - 1] != counter:
            self.counters[self.length] = counter
            self.times[self.length] = now
            self.length += 1


class StreamRoot(LightningFlow):
    def __init__(self, works: int, period: float, duration: float) -> None:
        super().__init__()
        self.works = List(*(Streamer(period, duration) for _ in range(works)))
        # Room for every value a work sets, with a margin (the pace is kept by time, not by count).
        capacity = int(duration / period * 1.1) + 100
        self._observed = [Observed(capacity) for _ in range(works)]

    def run(self) -> None:
        now = time.time()
        for index, work in enumerate(self.works):
            work.run()
            self._observed[index].note(work.counter, now)
        if all(work.has_succeeded for work in self.works):
            self.stop()


def visibility(sent: list[float], observed: Observed) -> list[float]:
    """For each value i the work set at sent[i-1]: time until the first flow pass that saw counter ≥ i."""
    latencies, cursor, seen = [], 0, observed.length
    for index, t_sent in enumerate(sent, start=1):
        while cursor < seen and observed.counters[cursor] < index:
            cursor += 1
        if cursor == seen:
            break
        latencies.append((observed.times[cursor] - t_sent) * 1000)
    return latencies


class Stamp(LightningWork):
    def __init__(self) -> None:
        super().__init__()
        self.started: list[float] = []

    def run(self, index: int) -> None:
        self.started = [*self.started, time.time()]


class StartRoot(LightningFlow):
    def __init__(self, calls: int) -> None:
        super().__init__()
        self.work = Stamp()
        self.calls = calls
        self.index = 0
        self._called_at: list[float] = []
        self._first_pass: float | None = None

    def run(self) -> None:
        if self._first_pass is None:
            self._first_pass = time.perf_counter()
        while self.index < self.calls:
            if len(self._called_at) == self.index:
                self._called_at.append(time.time())
            self.work.run(self.index)
            self.index += 1
        self.stop()
