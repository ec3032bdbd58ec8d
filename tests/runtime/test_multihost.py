"""Apps on a cluster whose scheduler and workers are other hosts: network namespaces the test makes itself
(see tests/multihost.py), a `dask scheduler` on one, a `dask worker` on each of two others, the client (this
process, and `lightnb run`) in the root namespace; storage only through S3 (a moto server on the bridge
address), the hosts' own folders private. Then the same hosts for faults: a link cut under a running work,
short (ridden out) and for good (the app fails within seconds, naming what was lost)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from multihost import Host, Hosts, namespaces_unavailable, wait_for
from multihost_apps import PIPELINE_APP, TICKER_APP
from script_apps import comparable, env

from lightnb import LightningApp
from lightnb.runtime.cluster import ClusterError

pytestmark = pytest.mark.multihost

BUCKET = "lightnb-multihost"
SCHEDULER_PORT = 8786
# The test's scheduler removes a worker that has not sent a heartbeat for this long (Dask's default is 5 min;
# docs/clusters.md says what to set).
WORKER_TTL = "6s"


@dataclass
class Topology:
    hosts: Hosts
    scheduler: Host
    workers: dict[str, Host]
    s3_env: dict[str, str]
    client_dir: Path
    address: str
    worker_processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_worker(self, name: str) -> None:
        host = self.workers[name]
        self.worker_processes[name] = self.hosts.dask(
            host, ["worker", self.address, "--no-nanny", "--nthreads", "1", "--host", host.address,
                   "--no-dashboard", "--local-directory", str(host.directory / "dask"), "--resources", f"{name}=1"],
            "worker",
            env=self.s3_env)

    def connected(self) -> dict[str, Any]:
        from distributed import Client

        with Client(self.address, timeout=20, set_as_default=False) as client:
            return client.scheduler_info(n_workers=-1)["workers"]

    def ensure_workers(self) -> None:
        """Both workers connected (a fault test may have lost one: it is started again)."""
        for name, process in self.worker_processes.items():
            if process.poll() is not None:
                self.start_worker(name)
        wait_for(lambda: len(self.connected()) == len(self.workers), 90, "both workers connected")

    def tasks(self) -> dict[str, str]:
        """The lightnb tasks the scheduler holds, with their state."""
        from distributed import Client

        def held(dask_scheduler: Any) -> dict[str, str]:
            return {str(key): task.state for key, task in dask_scheduler.tasks.items()
                    if str(key).startswith("lightnb-")}

        with Client(self.address, timeout=20, set_as_default=False) as client:
            return client.run_on_scheduler(held)

    def host_of(self, worker_address: str) -> Host:
        return next(host for host in self.workers.values() if worker_address.startswith(f"tcp://{host.address}:"))

    def starts(self, label: str) -> int:
        """How many executions of the ticker's call with this label began (markers in S3)."""
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        return len(fs.ls(f"{BUCKET}/starts/{label}")) if fs.exists(f"{BUCKET}/starts/{label}") else 0


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Iterator[Topology]:
    reason = namespaces_unavailable()
    if reason is not None:
        pytest.skip(f"multi-host tests need network namespaces, which this machine refuses: {reason}")
    from moto.server import ThreadedMotoServer

    base = tmp_path_factory.mktemp("multihost")
    client_dir = base / "client"
    client_dir.mkdir()
    hosts = Hosts(base, hidden=client_dir)
    server = None
    try:
        scheduler = hosts.add("scheduler")
        workers = {name: hosts.add(name) for name in ("w1", "w2")}
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address=hosts.gateway, port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        s3_env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
                  "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        address = f"tcp://{scheduler.address}:{SCHEDULER_PORT}"
        hosts.dask(scheduler, ["scheduler", "--host", scheduler.address, "--port", str(SCHEDULER_PORT),
                               "--no-dashboard"], "scheduler",
                   env={"DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": WORKER_TTL})
        topology = Topology(hosts, scheduler, workers, s3_env, client_dir, address)
        for name in workers:
            topology.start_worker(name)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in s3_env.items():
                patch.setenv(key, value)
            import s3fs

            s3fs.S3FileSystem.clear_instance_cache()
            s3fs.S3FileSystem().mkdir(BUCKET)
            wait_for(lambda: _reachable(address), 60, "the scheduler")
            topology.ensure_workers()
            yield topology
            s3fs.S3FileSystem.clear_instance_cache()
    finally:
        hosts.close()
        if server is not None:
            server.stop()


def _reachable(address: str) -> bool:
    import socket

    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False


def _write(topology: Topology, name: str, text: str) -> Path:
    path = topology.client_dir / name
    path.write_text(text)
    return path


def _load(path: Path) -> Any:
    from lightnb.cli.appfile import load_module

    return load_module(path)


def _final(state: dict[str, Any]) -> dict[str, Any]:
    """What the app's final state says, without what differs from one run (or cluster) to another."""
    state = comparable(state)
    for work in ("train", "serve"):
        state["works"][work]["vars"].pop("where")
    return state


@pytest.fixture(scope="module")
def embedded_state(tmp_path_factory) -> dict[str, Any]:
    """The pipeline's final state on the embedded cluster (this machine, a local storage folder)."""
    folder = tmp_path_factory.mktemp("embedded")
    path = folder / "pipeline.py"
    path.write_text(PIPELINE_APP)
    result = subprocess.run([sys.executable, "-m", "lightnb", "run", str(path), "--storage", str(folder / "storage"),
                             "--state-json", str(folder / "state.json")], cwd=folder, env=_env({}),
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((folder / "state.json").read_text())


def _env(extra: dict[str, str]) -> dict[str, str]:
    variables = {k: v for k, v in env().items() if not k.startswith(("AWS_", "LIGHTNB_"))}
    return {**variables, **extra}


def test_a_pipeline_gives_the_same_final_state_on_other_hosts_as_on_the_embedded_cluster(topology, embedded_state):
    module = _load(_write(topology, "pipeline.py", PIPELINE_APP))
    app = LightningApp(module.Root(), cluster=topology.address, storage=f"s3://{BUCKET}/api").start()
    try:
        app.wait(120)
    finally:
        app.stop()
    state = app.state
    assert app.end_message == "served 3 answers"
    hosts = {host.address for host in topology.workers.values()}
    for work in ("train", "serve"):  # each work ran on one of the other hosts
        assert state["works"][work]["vars"]["where"].removeprefix("tcp://").rsplit(":", 1)[0] in hosts
    assert _final(state) == _final(embedded_state)
    import s3fs

    stored = s3fs.S3FileSystem(skip_instance_cache=True).find(f"{BUCKET}/api")
    assert any(key.endswith("drives/runs/root.train/metrics.txt") for key in stored), stored
    assert any("/paths/root.train/" in key and key.endswith("model.txt") for key in stored), stored


def test_lightnb_run_on_the_cluster_gives_the_same_final_state(topology, embedded_state):
    path = _write(topology, "pipeline_cli.py", PIPELINE_APP)
    state_file = topology.client_dir / "cli-state.json"
    result = subprocess.run(
        [sys.executable, "-m", "lightnb", "run", str(path), "--cluster", topology.address,
         "--storage", f"s3://{BUCKET}/cli", "--state-json", str(state_file)],
        cwd=topology.client_dir, env=_env(topology.s3_env), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "served 3 answers" in result.stdout
    assert _final(json.loads(state_file.read_text())) == _final(embedded_state)


def test_a_local_storage_folder_with_workers_on_other_hosts_is_refused_up_front(topology):
    module = _load(_write(topology, "pipeline_local.py", PIPELINE_APP))
    folder = topology.client_dir / "storage"
    app = LightningApp(module.Root(), cluster=topology.address, storage=str(folder))
    with pytest.raises(ClusterError) as refused:
        app.start()
    message = str(refused.value)
    assert f"the app's storage is the local folder {folder}" in message
    for host in topology.workers.values():
        assert f"tcp://{host.address}:" in message  # the workers that cannot see it
    assert "storage=" in message and "s3://" in message
    assert not folder.exists()  # the probe made no folder,
    assert not [p for p in topology.client_dir.rglob(".lightnb-probe-*")]  # and left no marker behind

    # A folder every host sees at the same path (as an NFS mount would be) is accepted.
    shared = topology.hosts.base / "shared-disk"
    accepted = LightningApp(module.Root(), cluster=topology.address, storage=str(shared)).start()
    accepted.stop()
    assert accepted.stage == "stopped"

    result = subprocess.run(
        [sys.executable, "-m", "lightnb", "run", str(topology.client_dir / "pipeline_local.py"), "--cluster",
         topology.address, "--storage", str(folder)],
        cwd=topology.client_dir, env=_env(topology.s3_env), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot see" in result.stderr and "--storage s3://" in result.stderr


def _ticker(topology: Topology, label: str, ticks: int, pace: float) -> LightningApp:
    module = _load(_write(topology, f"ticker_{label}.py", TICKER_APP))
    return LightningApp(module.Root(), cluster=topology.address, storage=f"s3://{BUCKET}/{label}",
                        env={"LNB_LABEL": label, "LNB_TICKS": str(ticks), "LNB_PACE": str(pace)})


def _events_on_scheduler(topology: Topology, app: LightningApp) -> int:
    from distributed import Client

    from lightnb.runtime.dask import events_topic

    with Client(topology.address, timeout=20, set_as_default=False) as client:
        return len(client.get_events(events_topic(app.app_id)))


def test_workers_that_reach_the_client_stream_to_it_directly_and_others_through_the_scheduler(
        topology, monkeypatch):
    # The address of the client's host on the hosts' network: the workers reach it.
    monkeypatch.setenv("LIGHTNB_DIRECT_STREAM", topology.hosts.gateway)
    app = _ticker(topology, "direct", ticks=20, pace=0.05).start()
    receiver = app.loop.executor._receiver
    assert receiver is not None and receiver.route.address[0] == topology.hosts.gateway
    app.wait(120)
    assert app.end_message == "ticked 20 times"
    assert receiver.messages > 0 and _events_on_scheduler(topology, app) == 0

    # An address the workers cannot reach (the client's own loopback): they fall back, nothing is lost.
    monkeypatch.setenv("LIGHTNB_DIRECT_STREAM", "127.0.0.1")
    app = _ticker(topology, "fallback", ticks=20, pace=0.05).start()
    receiver = app.loop.executor._receiver
    app.wait(120)
    assert app.end_message == "ticked 20 times" and app.root.ticker.ticks == 20
    assert receiver is not None and receiver.messages == 0 and _events_on_scheduler(topology, app) > 0


@pytest.mark.parametrize("side", ["worker", "scheduler"])
def test_a_link_cut_shorter_than_the_timeouts_is_ridden_out_and_the_call_runs_once(topology, side):
    """A worker host cut for 2 s (the scheduler's worker-ttl is 6 s), the scheduler host for 3 s (lightnb
    counts the scheduler lost after 10 s of silence): the work goes on, its reports arrive once the link is
    back, and the call is neither lost nor run again."""
    topology.ensure_workers()
    label = f"ride-{side}"
    app = _ticker(topology, label, ticks=24, pace=0.25).start()
    try:
        wait_for(lambda: app.root.ticker.ticks >= 3, 60, "the ticker running")
        host = topology.host_of(app.root.ticker.where) if side == "worker" else topology.scheduler
        seen: list[int] = []

        def restore() -> None:
            seen.append(app.root.ticker.ticks)
            host.restore()

        host.cut()
        seen.append(app.root.ticker.ticks)
        cut = threading.Timer(2.0 if side == "worker" else 3.0, restore)
        cut.start()
        try:
            app.wait(90)
        finally:
            cut.join()
            host.restore()
    finally:
        app.stop()
    # The link was cut: of the 8-12 ticks of the cut, none came through (a few may have been on their way).
    assert seen[1] - seen[0] <= 3, seen
    assert app.stage == "stopped" and app.end_message == "ticked 24 times"
    assert app.root.ticker.ticks == 24  # every report arrived
    assert topology.starts(label) == 1  # the call ran once
    assert len(topology.connected()) == 2  # no worker was lost


def _run_ticker_cli(topology: Topology, label: str, machine: str = "default") -> subprocess.Popen[str]:
    path = _write(topology, f"ticker_{label}.py", TICKER_APP)
    return subprocess.Popen(
        [sys.executable, "-m", "lightnb", "run", str(path), "--cluster", topology.address, "--storage",
         f"s3://{BUCKET}/{label}", "--env", f"LNB_LABEL={label}", "--env", "LNB_TICKS=400", "--env",
         "LNB_PACE=0.25", "--env", f"LNB_MACHINE={machine}"],
        cwd=topology.client_dir, env=_env(topology.s3_env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> tuple[str, str]:
    """The output up to the first line holding ``marker``, and that line."""
    assert process.stdout is not None
    seen: list[str] = []
    found: list[str] = []

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            seen.append(line)
            if marker in line:
                found.append(line)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert found, f"no line with {marker!r} within {timeout} s:\n{''.join(seen)}"
    return "".join(seen), found[0]


@pytest.mark.parametrize("pinned", [False, True], ids=["anywhere", "pinned"])
def test_a_worker_host_cut_off_fails_the_app_within_seconds_naming_the_worker(topology, pinned):
    """Anywhere: Dask would run the task again on the other worker (lightnb refuses). Pinned (a resource only
    the lost worker offers): Dask has nowhere to run it and would wait for ever; lightnb hears the removal."""
    topology.ensure_workers()
    label = f"lost-worker-{'pinned' if pinned else 'anywhere'}"
    process = _run_ticker_cli(topology, label, machine="w1" if pinned else "default")
    try:
        before, line = _read_until(process, "tick 3 on ", 90)
        worker = line.split(" on ", 1)[1].strip()
        host = topology.host_of(worker)
        host.cut()
        cut = time.monotonic()
        output, _ = process.communicate(timeout=60)
        ended = time.monotonic() - cut
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    output = before + output
    print(output, f"(ended {ended:.1f} s after the cut)")
    assert process.returncode == 1, output
    assert f"lost the worker {worker}" in output, output
    assert "Check that worker's host" in output
    assert ended < 30, f"the app took {ended:.0f} s to fail"  # the scheduler's worker-ttl (6 s) and a check
    assert host is topology.workers["w1"] or not pinned
    assert topology.starts(label) == 1  # the call ran once: not again on the other worker
    # Nor is it left waiting on the scheduler for a worker that could run it.
    wait_for(lambda: topology.tasks() == {}, 30, "the app's tasks gone from the scheduler")

    host.restore()
    # Nothing left running: back on the network, the removed worker learns it was removed and exits (its
    # work with it).
    lost = topology.worker_processes[next(n for n, h in topology.workers.items() if h is host)]
    wait_for(lambda: lost.poll() is not None, 60, "the cut-off worker's process ending")


def test_the_scheduler_host_cut_off_fails_the_app_within_seconds_naming_the_scheduler(topology):
    """Last of the module: the workers, cut off from the scheduler with it, are removed."""
    topology.ensure_workers()
    process = _run_ticker_cli(topology, "lost-scheduler")
    try:
        before, _ = _read_until(process, "tick 3 on ", 90)
        topology.scheduler.cut()
        cut = time.monotonic()
        output, _ = process.communicate(timeout=60)
        ended = time.monotonic() - cut
        # The scheduler, on its side of the cut, removes the workers that stopped sending heartbeats.
        log = lambda: topology.hosts.log(topology.scheduler, "scheduler")  # noqa: E731
        wait_for(lambda: all(f"Remove worker addr: tcp://{h.address}:" in log() for h in topology.workers.values()),
                 60, "the scheduler removing the workers")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        topology.scheduler.restore()
    output = before + output
    print(output, f"(ended {ended:.1f} s after the cut)")
    assert process.returncode == 1, output
    assert f"lost the scheduler at {topology.address}: it has not answered for 10 s" in output, output
    assert "Check the scheduler's host and network" in output
    assert ended < 25, f"the app took {ended:.0f} s to fail"
    # Nothing left running: back in touch, the workers learn they were removed and exit, their work with them.
    for name, worker in topology.worker_processes.items():
        wait_for(lambda worker=worker: worker.poll() is not None, 60, f"worker {name} ending")
