"""What the streaming benchmarks share: works that set an attribute at a fixed rate, a flow that notes when it
sees each value, and the latency from a set to the first pass that saw it."""

from __future__ import annotations

import time

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


class StreamRoot(LightningFlow):
    def __init__(self, works: int, period: float, duration: float) -> None:
        super().__init__()
        self.works = List(*(Streamer(period, duration) for _ in range(works)))
        self._observed: list[list[tuple[int, float]]] = [[] for _ in range(works)]

    def run(self) -> None:
        now = time.time()
        for index, work in enumerate(self.works):
            work.run()
            observed = self._observed[index]
            if not observed or observed[-1][0] != work.counter:
                observed.append((work.counter, now))
        if all(work.has_succeeded for work in self.works):
            self.stop()


def visibility(sent: list[float], observed: list[tuple[int, float]]) -> list[float]:
    """For each value i the work set at sent[i-1]: time until the first flow pass that saw counter ≥ i."""
    latencies, cursor = [], 0
    for index, t_sent in enumerate(sent, start=1):
        while cursor < len(observed) and observed[cursor][0] < index:
            cursor += 1
        if cursor == len(observed):
            break
        latencies.append((observed[cursor][1] - t_sent) * 1000)
    return latencies
