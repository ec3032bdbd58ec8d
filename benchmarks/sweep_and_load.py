"""Sweep and LoadTest, measured against doing the same by hand, side by side in one run.

Run:  python benchmarks/sweep_and_load.py [--trials 5] [--n-trials 16] [--concurrency 4] [--step-seconds 0.1]
                                          [--load-seconds 5] [--users 4] [--skip-load]

1. Sweep vs by hand. The same study — the same seeded RandomSampler, so the same trials, no pruning, the same
   JournalStorage file type — run by ``Sweep`` in a LightningApp, and by hand with Optuna's ask/tell and
   Dask futures (``client.submit``, at most ``concurrency`` at once, the next trial asked as one finishes),
   on the same kind of LocalCluster (lightnb's set-up, 2 worker processes; one cluster, both sides). A trial
   takes 5 steps of ``--step-seconds``; Sweep's work streams ``metrics`` and ``step`` at each (each reported
   to the study: 80 more journal writes than by hand), the by-hand function just returns its value. Timed:
   Sweep from ``app.start()`` until the flow saw the sweep done (the app's own start on the shared cluster
   included; also shown from the flow's first pass); by hand from the first ask until the last tell. Trials
   alternate which side runs first. Goal: Sweep ≥ 0.95× the trials per minute of by hand.
2. Pruning: the same Sweep with ``MedianPruner`` and with no pruner, on trials whose loss is known from
   their first step (half of them bad); the wall time saved by pruning.
3. ModelServer under LoadTest vs a plain uvicorn FastAPI app serving the same model (same checkpoint, same
   request and response pydantic models, a sync endpoint under ``torch.inference_mode``, uvicorn with
   access logs off) in a process of its own. Both are loaded by the same LoadTest (Locust in a worker's
   subprocess, ``--users`` users for ``--load-seconds`` s, POST /predict with one input row), alternating
   which goes first. Goal: ModelServer ≥ 0.9× the RPS, p99 ≤ 1.2×.

Medians over ``--trials`` runs are printed, with p99 where it applies (load tests: Locust's p99 of each run).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import lightning as L
import optuna
import torch

from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.components import LoadTest, ModelServer, Sweep
from lightnb.runtime.cluster import start_local_cluster

optuna.logging.set_verbosity(optuna.logging.WARNING)
STEPS = 5


def loss_of(x: float, step: int) -> float:
    return (x - 2) ** 2 + (STEPS - step) * 0.1


# -- 1. the same study, by Sweep and by hand ------------------------------------------------------------------
class Steps(LightningWork):
    def __init__(self, x: float, pause: float):
        super().__init__(parallel=True)
        self.x, self.pause = x, pause
        self.metrics: dict = {}
        self.step = 0

    def run(self):
        for step in range(1, STEPS + 1):
            time.sleep(self.pause)
            self.metrics = {"loss": loss_of(self.x, step)}
            self.step = step


def by_hand_trial(x: float, pause: float) -> float:
    value = 0.0
    for step in range(1, STEPS + 1):
        time.sleep(pause)
        value = loss_of(x, step)
    return value


def suggest(trial):
    return {"x": trial.suggest_float("x", -3.0, 7.0)}


class Done(LightningFlow):
    def __init__(self, sweep: Sweep):
        super().__init__()
        self.sweep = sweep
        self._first: float | None = None
        self._ended: float | None = None

    def run(self):
        if self._first is None:
            self._first = time.perf_counter()
        self.sweep.run()
        if self.sweep.done and self._ended is None:
            self._ended = time.perf_counter()
            self.stop("done")


def run_sweep(cluster, storage: str, n_trials: int, concurrency: int, pause: float, pruner=None,
              work=Steps) -> tuple[float, list]:
    sweep = Sweep(lambda params: work(params["x"], pause), suggest, n_trials=n_trials, concurrency=concurrency,
                  metric="loss", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
    flow = Done(sweep)
    app = LightningApp(flow, cluster=cluster, storage=storage)
    started = time.perf_counter()
    app.start()
    app.wait(600)
    run_sweep.from_first_pass = flow._ended - flow._first  # type: ignore[attr-defined]
    return flow._ended - started, sweep.trials


def run_by_hand(client, storage: str, n_trials: int, concurrency: int, pause: float) -> tuple[float, list]:
    from distributed import as_completed

    path = os.path.join(storage, f"by-hand-{time.monotonic_ns()}.journal")
    study = optuna.create_study(
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path)),
        sampler=optuna.samplers.RandomSampler(seed=0), direction="minimize")
    started = time.perf_counter()
    running = as_completed(loop=client.loop)
    asked = 0
    live = {}
    while asked < min(concurrency, n_trials):
        trial = study.ask()
        future = client.submit(by_hand_trial, **suggest(trial), pause=pause, pure=False)
        live[future.key] = trial
        running.add(future)
        asked += 1
    for future in running:
        study.tell(live.pop(future.key), future.result())
        if asked < n_trials:
            trial = study.ask()
            nxt = client.submit(by_hand_trial, **suggest(trial), pause=pause, pure=False)
            live[nxt.key] = trial
            running.add(nxt)
            asked += 1
    took = time.perf_counter() - started
    return took, [{"params": t.params, "value": t.value} for t in study.trials]


# -- 2. pruning ------------------------------------------------------------------------------------------------
class Known(Steps):
    """Loss known from the first step: x itself (half the space is bad)."""

    def run(self):
        for step in range(1, STEPS + 1):
            time.sleep(self.pause)
            self.metrics = {"loss": self.x}
            self.step = step


# -- 3. ModelServer vs plain uvicorn --------------------------------------------------------------------------
class Regressor(L.LightningModule):
    """A small MLP, 1 input → 1 output (what is served)."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(1, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)


def make_checkpoint(folder: str) -> str:
    from torch.utils.data import DataLoader, TensorDataset

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(256, 1, generator=generator) * 2 - 1
    data = DataLoader(TensorDataset(x, 2 * x + 1), batch_size=32)
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=folder)
    trainer.fit(Regressor(hidden=32), data)
    path = os.path.join(folder, "model.ckpt")
    trainer.save_checkpoint(path)
    return path


PLAIN_SERVER = r'''
import sys
sys.path.insert(0, sys.argv[3])
import torch, uvicorn
from typing import Any
from fastapi import FastAPI
from pydantic import BaseModel, Field
from sweep_and_load import Regressor

class PredictRequest(BaseModel):
    inputs: list[Any] = Field(description="A batch of model inputs")

class PredictResponse(BaseModel):
    outputs: list[Any]

model = Regressor.load_from_checkpoint(sys.argv[1], map_location="cpu")
model.eval()
app = FastAPI()

@app.post("/predict", response_model=PredictResponse)
def predict(request: PredictRequest):
    inputs = torch.as_tensor(request.inputs, dtype=torch.float32)
    with torch.inference_mode():
        outputs = model(inputs)
    return {"outputs": outputs.tolist()}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
'''


class Load(LightningFlow):
    """Loads a server: the ModelServer of this app (``serve=True``) or a plain one at ``url``."""

    def __init__(self, checkpoint: str, url: str | None, users: int, seconds: float):
        super().__init__()
        self.server = ModelServer(checkpoint, module_class=Regressor) if url is None else None
        self.load = LoadTest(url, path="/predict", json={"inputs": [[0.5]]}, users=users, spawn_rate=users * 10,
                             duration=seconds)

    def run(self):
        if self.server is not None:
            self.server.run()
            if self.server.url is None:
                return
            self.load.url = self.server.url
        self.load.run()
        if self.load.has_succeeded:
            self.stop("loaded")


def load_once(cluster, storage: str, checkpoint: str, url: str | None, users: int, seconds: float) -> dict:
    flow = Load(checkpoint, url, users, seconds)
    app = LightningApp(flow, cluster=cluster, storage=storage)
    app.start()
    app.wait(300)
    return {"rps": flow.load.rps, "p99": flow.load.p99_ms, "requests": flow.load.requests,
            "failures": flow.load.failures}


def wait_answers(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.post(url + "predict", json={"inputs": [[0.5]]}, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the plain server did not answer at {url}")


# -- main ------------------------------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--n-trials", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--step-seconds", type=float, default=0.1)
    parser.add_argument("--load-seconds", type=float, default=5)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, optuna "
          f"{optuna.__version__}; {' '.join(sys.argv)}", flush=True)

    from distributed import Client

    cluster = start_local_cluster(n_workers=2)
    client = Client(cluster, set_as_default=False)
    with tempfile.TemporaryDirectory() as storage:
        # Warm both sides (imports on the workers, the first app's connection).
        run_sweep(cluster, storage, 4, args.concurrency, 0.01)
        run_by_hand(client, storage, 4, args.concurrency, 0.01)

        sweep_times, hand_times, first_pass_times = [], [], []
        for trial in range(args.trials):
            sides = ["sweep", "hand"] if trial % 2 == 0 else ["hand", "sweep"]
            for side in sides:
                if side == "sweep":
                    took, trials = run_sweep(cluster, storage, args.n_trials, args.concurrency, args.step_seconds)
                    assert all(t["state"] == "complete" for t in trials), trials
                    sweep_params = [t["params"] for t in trials]
                    sweep_times.append(took)
                    first_pass_times.append(run_sweep.from_first_pass)
                else:
                    took, trials = run_by_hand(client, storage, args.n_trials, args.concurrency, args.step_seconds)
                    hand_params = [t["params"] for t in trials]
                    hand_times.append(took)
            assert sweep_params == hand_params, "the two sides ran different trials"
        ideal = args.n_trials / args.concurrency * STEPS * args.step_seconds
        per_minute = [60 * args.n_trials / t for t in sweep_times], [60 * args.n_trials / t for t in hand_times]
        ratio = median(per_minute[0]) / median(per_minute[1])
        print(f"\n1. {args.n_trials} trials, {args.concurrency} at once, {STEPS} × {args.step_seconds} s each "
              f"(ideal wall time {ideal:.2f} s), {args.trials} runs per side")
        print(f"   by hand (Optuna + Dask futures): median {median(hand_times):.2f} s, "
              f"{median(per_minute[1]):.0f} trials/min (worst run {max(hand_times):.2f} s)")
        print(f"   Sweep (LightningApp):            median {median(sweep_times):.2f} s, "
              f"{median(per_minute[0]):.0f} trials/min (worst run {max(sweep_times):.2f} s)")
        print(f"   Sweep, from the flow's first pass (the app's start left out): median "
              f"{median(first_pass_times):.2f} s")
        print(f"   Sweep / by hand trials per minute: {ratio:.2f}×   (goal ≥ 0.95×)", flush=True)

        pruned_times, full_times, pruned_counts = [], [], []
        for trial in range(args.trials):
            for side in (["prune", "full"] if trial % 2 == 0 else ["full", "prune"]):
                pruner = optuna.pruners.MedianPruner(n_startup_trials=args.concurrency) if side == "prune" else None
                took, trials = run_sweep(cluster, storage, args.n_trials, args.concurrency, args.step_seconds * 2,
                                         pruner=pruner, work=Known)
                if side == "prune":
                    pruned_times.append(took)
                    pruned_counts.append(sum(t["state"] == "pruned" for t in trials))
                else:
                    full_times.append(took)
        saved = 1 - median(pruned_times) / median(full_times)
        print(f"\n2. pruning ({args.n_trials} trials, {STEPS} × {args.step_seconds * 2} s each, MedianPruner with "
              f"{args.concurrency} start-up trials)")
        print(f"   no pruner: median {median(full_times):.2f} s;  MedianPruner: median {median(pruned_times):.2f} s "
              f"({median(pruned_counts):.0f} trials pruned) → {saved:.0%} of the wall time saved", flush=True)

        if not args.skip_load:
            load_benchmark(cluster, storage, args)
    client.close()
    cluster.close()
    return 0


def load_benchmark(cluster, storage: str, args) -> None:
    from lightnb.components._serving import free_port

    here = os.path.dirname(os.path.abspath(__file__))
    checkpoint = make_checkpoint(storage)
    port = free_port()
    script = os.path.join(storage, "plain_server.py")
    with open(script, "w") as out:
        out.write(PLAIN_SERVER)
    plain = subprocess.Popen([sys.executable, script, checkpoint, str(port), here], stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_answers(url)
        load_once(cluster, storage, checkpoint, None, args.users, 1)  # warm
        results: dict[str, list[dict]] = {"server": [], "plain": []}
        for trial in range(args.trials):
            for side in (["server", "plain"] if trial % 2 == 0 else ["plain", "server"]):
                result = load_once(cluster, storage, checkpoint, None if side == "server" else url, args.users,
                                   args.load_seconds)
                assert result["failures"] == 0, result
                results[side].append(result)
    finally:
        plain.terminate()
        plain.wait(10)
    server_rps, plain_rps = (median([r["rps"] for r in results[s]]) for s in ("server", "plain"))
    server_p99, plain_p99 = (median([r["p99"] for r in results[s]]) for s in ("server", "plain"))
    print(f"\n3. POST /predict, {args.users} Locust users for {args.load_seconds} s, {args.trials} runs per side "
          "(medians of each run's average RPS and p99)")
    print(f"   plain uvicorn + FastAPI: {plain_rps:.0f} RPS, p99 {plain_p99:.0f} ms")
    print(f"   ModelServer:             {server_rps:.0f} RPS, p99 {server_p99:.0f} ms")
    print(f"   ModelServer / plain: RPS {server_rps / plain_rps:.2f}× (goal ≥ 0.9×), p99 "
          f"{server_p99 / plain_p99:.2f}× (goal ≤ 1.2×)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
