"""TrainerWork overhead: the same model and steps through `TrainerWork` in an app vs a plain `Trainer.fit`.

Run:  python benchmarks/trainer_overhead.py [--trials 9] [--epochs 4] [--samples 16384] [--threads 1]

Both sides are warm (lightning imported, one untimed fit first) and train with the same Trainer set-up
TrainerWork uses (TensorBoard logger, best/last checkpoints, no progress bar). Trials alternate between the
two sides (plain first on even trials, TrainerWork first on odd ones), so a machine whose load drifts
penalises neither, and both set the same number of torch threads where they train (`--threads`, 1 by
default: on a small, shared machine spinning OpenMP threads make fit times swing far more than anything
measured here):

    plain       a separate, long-lived Python process times `Trainer(...).fit(model, data)` (model and data
                built inside the timing, as TrainerWork builds them);
    TrainerWork a LocalCluster set up like lightnb's embedded one (1 worker process, started once) runs a fresh
                app per trial; timed from the flow's `trainer.run()` until the flow sees the call succeed: the
                call's pickling and dispatch, the fit with progress and metrics streamed to the flow, the
                final status reaching the flow. Also shown: from `app.start()` until `app.wait()` returns,
                which adds the app's own start and stop (connecting to the cluster, closing).

Target (issue "Ready-made works"): overhead ≤ 10 % of wall time (median against median).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import lightning as L
import psutil
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightnb import LightningApp, LightningFlow
from lightnb.components import TrainerWork


class MLP(L.LightningModule):
    def __init__(self, hidden: int = 64, lr: float = 1e-3, threads: int = 1):
        super().__init__()
        # Set where the training runs (a thread of a Dask worker, or the plain process's main thread): the
        # OpenMP thread count is per thread, and an environment variable does not reach every thread alike.
        torch.set_num_threads(threads)
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                                       torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class Data(L.LightningDataModule):
    def __init__(self, samples: int = 16384, batch_size: int = 64):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(samples, 8, generator=generator)
        y = x.sum(dim=1, keepdim=True).sin() + 0.1 * torch.randn(samples, 1, generator=generator)
        split = samples * 7 // 8
        self.train_set, self.val_set = TensorDataset(x[:split], y[:split]), TensorDataset(x[split:], y[split:])
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)


# -- plain Trainer.fit, in a process of its own ---------------------------------------------------------------
def plain_fit(epochs: int, samples: int, threads: int, root_dir: str) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the process, steps)."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    started, cpu = time.perf_counter(), time.process_time()
    model, data = MLP(threads=threads), Data(samples)
    logger = TensorBoardLogger(save_dir=root_dir, name="", default_hp_metric=False)
    checkpoints = ModelCheckpoint(dirpath=os.path.join(logger.log_dir, "checkpoints"), save_top_k=1,
                                  save_last=True)
    trainer = L.Trainer(max_epochs=epochs, logger=logger, callbacks=[checkpoints], enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(model, datamodule=data)
    return time.perf_counter() - started, time.process_time() - cpu, trainer.global_step


def plain_process(epochs: int, samples: int, threads: int) -> None:
    """Entry point of the plain side (a subprocess): one fit per line read from stdin, its result printed."""
    with tempfile.TemporaryDirectory() as root_dir:
        for _ in sys.stdin:
            seconds, cpu, steps = plain_fit(epochs, samples, threads, root_dir)
            print(json.dumps({"seconds": seconds, "cpu": cpu, "steps": steps}), flush=True)


class PlainSide:
    """The plain process, asked for one fit at a time."""

    def __init__(self, epochs: int, samples: int, threads: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--plain-process", f"--epochs={epochs}", f"--samples={samples}",
             f"--threads={threads}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def fit(self) -> tuple[float, float, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("fit\n")
        self.process.stdin.flush()
        result = json.loads(self.process.stdout.readline())
        return result["seconds"], result["cpu"], result["steps"]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(60)


# -- the same through TrainerWork -----------------------------------------------------------------------------
class Train(LightningFlow):
    def __init__(self, epochs: int, samples: int, threads: int, root_dir: str):
        super().__init__()
        self.trainer = TrainerWork(MLP, Data, module_params={"threads": threads}, data_params={"samples": samples},
                                   max_epochs=epochs, root_dir=root_dir, trainer_kwargs={"enable_model_summary": False})

        self._called = self._done = 0.0  # when the flow called run(), when it saw the call succeed

    def run(self):
        self._called = self._called or time.perf_counter()
        self.trainer.run()
        if self.trainer.has_succeeded:
            self._done = self._done or time.perf_counter()
            self.stop("trained")


def trainer_work_fit(cluster, worker: psutil.Process, epochs: int, samples: int, threads: int,
                     root_dir: str) -> tuple[float, float, float, int]:
    """(call → the flow sees success, app start → app ended, CPU seconds of the worker and of this process
    (the app's loop), steps)."""
    flow = Train(epochs, samples, threads, root_dir)
    app = LightningApp(flow, cluster=cluster)
    cpu = sum(worker.cpu_times()[:2]) + time.process_time()
    started = time.perf_counter()
    app.start()
    app.wait(600)
    ended = time.perf_counter()
    cpu = sum(worker.cpu_times()[:2]) + time.process_time() - cpu
    return flow._done - flow._called, ended - started, cpu, flow.trainer.step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--plain-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_process:
        plain_process(args.epochs, args.samples, args.threads)
        return

    from lightnb.runtime.cluster import start_local_cluster

    print(f"python {platform.python_version()}, torch {torch.__version__}, lightning {L.__version__}, "
          f"{os.cpu_count()} cores, {platform.platform()}")
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"model: MLP 8→64→64→1, {args.samples} samples (7/8 train), batch 64, {args.epochs} epochs, "
          f"{args.threads} torch thread(s), {args.trials} timed trials per side after one untimed warm-up, "
          f"load average before: {os.getloadavg()[0]:.1f}\n")

    from distributed import Client

    cluster = start_local_cluster(n_workers=1)
    with Client(cluster) as client:
        worker = psutil.Process(next(iter(client.run(os.getpid).values())))
    plain = PlainSide(args.epochs, args.samples, args.threads)
    plain_runs, work_runs = [], []
    try:
        with tempfile.TemporaryDirectory() as root_dir:
            work_fit = functools.partial(trainer_work_fit, cluster, worker, args.epochs, args.samples, args.threads,
                                         root_dir)
            plain.fit()  # warm-up: imports, first-fit costs
            work_fit()
            for trial in range(args.trials):
                if trial % 2 == 0:
                    plain_runs.append(plain.fit())
                    work_runs.append(work_fit())
                else:
                    work_runs.append(work_fit())
                    plain_runs.append(plain.fit())
                print(f"trial {trial + 1:2d}: plain {plain_runs[-1][0]:6.2f} s (CPU {plain_runs[-1][1]:5.2f})   "
                      f"TrainerWork {work_runs[-1][0]:6.2f} s (CPU {work_runs[-1][2]:5.2f}; app start → end "
                      f"{work_runs[-1][1]:6.2f} s)", flush=True)
    finally:
        plain.close()
        cluster.close()
    plain_seconds = [run[0] for run in plain_runs]
    plain_cpu = [run[1] for run in plain_runs]
    work_seconds = [run[0] for run in work_runs]
    app_seconds = [run[1] for run in work_runs]
    work_cpu = [run[2] for run in work_runs]
    steps = {run[-1] for run in plain_runs + work_runs}
    assert len(steps) == 1, f"both sides must train the same steps, got {steps}"

    def line(name: str, values: list[float]) -> str:
        return (f"{name:16s} median {statistics.median(values):6.2f} s   min {min(values):6.2f}   "
                f"max (≈p99 at n={len(values)}) {max(values):6.2f}")

    print(f"\nsteps per fit: {steps.pop()}")
    print(line("plain fit", plain_seconds))
    print(line("TrainerWork", work_seconds))
    print(line("  whole app", app_seconds))
    print(line("plain CPU", plain_cpu))
    print(line("TrainerWork CPU", work_cpu) + "   (worker process + the app's loop)")
    plain_median, work_median = statistics.median(plain_seconds), statistics.median(work_seconds)
    overhead = (work_median - plain_median) / work_median * 100
    best = (min(work_seconds) - min(plain_seconds)) / min(work_seconds) * 100
    print(f"\noverhead: {work_median - plain_median:+.2f} s = {overhead:+.1f} % of TrainerWork's wall time, "
          f"median against median (target ≤ 10 %): {'OK' if overhead <= 10 else 'OVER'}")
    cpu_overhead = (statistics.median(work_cpu) - statistics.median(plain_cpu)) / statistics.median(work_cpu) * 100
    print(f"          {min(work_seconds) - min(plain_seconds):+.2f} s = {best:+.1f} % best against best")
    print(f"          {cpu_overhead:+.1f} % in CPU time, median against median (what the machine's load does not "
          f"blur); load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
