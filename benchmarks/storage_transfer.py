"""Moving a large file from one work to another through a local drive, against a plain ``shutil.copy``.

A producer work ``put``\\s the file into a Drive, then a consumer work ``get``\\s it; both run on worker
processes of a real LocalCluster. The hand-over time runs from the start of the put to the end of the get,
as the works' own clocks saw it (one machine), so it includes the flow noticing the put and dispatching the
get. It is measured twice: as lightnb does it (on one disk the get links to the stored copy), and with
``LIGHTNB_STORAGE_LINKS=0`` (two real copies: the lower bound of any hand-over through storage). The target
is a hand-over throughput of at least 50 % of one ``shutil.copy`` of the same file on the same disk.

    python benchmarks/storage_transfer.py [--size-mb 500] [--trials 5] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

from lightnb import Drive, LightningApp, LightningFlow, LightningWork


class Producer(LightningWork):
    def __init__(self, folder: str):
        super().__init__()
        self.drive = Drive("lit://bench", root_folder=folder)
        self.started = []
        self.put_seconds = []

    def run(self, trial: int, links: bool):
        os.environ["LIGHTNB_STORAGE_LINKS"] = "1" if links else "0"
        if self.drive.list():  # freeing the previous copy's blocks is not part of the move (nor the baseline)
            self.drive.delete("big.bin")
        start = time.time()
        self.drive.put("big.bin")
        self.put_seconds = [*self.put_seconds, time.time() - start]
        self.started = [*self.started, start]


class Consumer(LightningWork):
    def __init__(self, folder: str):
        super().__init__()
        self.drive = Drive("lit://bench", root_folder=folder)
        self.ended = []
        self.get_seconds = []

    def run(self, trial: int, links: bool, size: int):
        os.environ["LIGHTNB_STORAGE_LINKS"] = "1" if links else "0"
        start = time.time()
        local = self.drive.get("big.bin", overwrite=True)
        end = time.time()
        if os.path.getsize(local) != size:
            raise RuntimeError(f"the consumer's file has {os.path.getsize(local)} bytes, not {size}")
        os.remove(local)
        self.get_seconds = [*self.get_seconds, end - start]
        self.ended = [*self.ended, end]


class HandOvers(LightningFlow):
    def __init__(self, folder: str, trials: int, size: int):
        super().__init__()
        self.producer = Producer(os.path.join(folder, "src"))
        self.consumer = Consumer(os.path.join(folder, "dst"))
        self._trials = trials
        self._size = size

    def run(self):
        for links in (True, False):
            for trial in range(self._trials + 1):  # the first of each series warms up
                self.producer.run(trial, links)
                self.consumer.run(trial, links, self._size)
        self.stop("done")


def timings(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"median {statistics.median(values) * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the files go (one disk)")
    args = parser.parse_args()
    size = args.size_mb * 10**6
    folder = tempfile.mkdtemp(prefix="lightnb-bench-", dir=args.dir)
    try:
        source = os.path.join(folder, "src", "big.bin")
        os.makedirs(os.path.dirname(source))
        with open(source, "wb") as file:
            block = os.urandom(4 << 20)
            for offset in range(0, size, len(block)):
                file.write(block[: min(len(block), size - offset)])

        copies = []
        target = os.path.join(folder, "copy.bin")
        for trial in range(args.trials + 1):
            start = time.perf_counter()
            shutil.copy(source, target)
            if trial:
                copies.append(time.perf_counter() - start)
            os.remove(target)

        from lightnb.runtime.cluster import start_local_cluster

        cluster = start_local_cluster(n_workers=2)
        try:
            app = LightningApp(HandOvers(folder, args.trials, size), cluster=cluster,
                               storage=os.path.join(folder, "storage"))
            app.start()
            app.wait(1800)
        finally:
            cluster.close()
        producer, consumer = app.root.producer, app.root.consumer
        n = args.trials + 1
        series = {}
        for index, label in ((0, "drive put+get, links (default)"), (1, "drive put+get, copies only")):
            window = slice(index * n + 1, (index + 1) * n)  # leave out the warm-up
            starts, ends = producer.started[window], consumer.ended[window]
            series[label] = ([end - start for start, end in zip(starts, ends, strict=True)],
                             producer.put_seconds[window], consumer.get_seconds[window])

        print(f"lightnb storage transfer: {args.size_mb} MB file, {args.trials} trials after one warm-up")
        print(f"  machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}, files in {folder} (one disk), LocalCluster 2 worker processes")
        print(f"  shutil.copy                      {timings(copies)}  "
              f"{size / statistics.median(copies) / 1e6:7.0f} MB/s")
        baseline = statistics.median(copies)
        for label, (handovers, puts, gets) in series.items():
            median = statistics.median(handovers)
            print(f"  {label:32s} {timings(handovers)}  {size / median / 1e6:7.0f} MB/s  "
                  f"= {baseline / median:6.1%} of shutil.copy")
            print(f"      put {timings(puts)};  get {timings(gets)}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
