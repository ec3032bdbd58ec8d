"""Storage on a real object store: an S3 server (moto) on loopback, reached through s3fs, by works on two
worker processes that act as two machines (each its own machine id and working directory), so that nothing
can take the local short cut: every byte goes through S3."""

from __future__ import annotations

import logging
import os
import pathlib
import time

import pytest
from bigfile import BigFile, BigFlow, MiB

from lightnb import CloudCompute, Drive, LightningFlow, LightningWork, Path, Payload

BUCKET = "lightnb-test"
STORAGE = f"s3://{BUCKET}/root"


@pytest.fixture(scope="module")
def s3_env():
    """A moto S3 server on 127.0.0.1 (a free port), and the environment that points s3fs at it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir(BUCKET)
        yield env
        s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


@pytest.fixture(scope="module")
def machines(tmp_path_factory):
    return {name: tmp_path_factory.mktemp(name) for name in ("m1", "m2")}


@pytest.fixture(scope="module")
def cluster(s3_env, machines):
    """Two worker processes standing for two machines: each has its own machine id, working directory and
    a resource naming it (CloudCompute("m1") runs a work there); the S3 settings are in their environment."""
    import dask
    from distributed import Nanny, Scheduler, SpecCluster

    from lightnb.runtime.cluster import embedded_cluster_config

    workers = {
        name: {"cls": Nanny, "options": {
            "nthreads": 2, "host": "127.0.0.1", "resources": {name: 1},
            "env": {**s3_env, "LIGHTNB_MACHINE_ID": name},
            "preload": ["lightnb.runtime.preload", f"import os; os.chdir({str(home)!r})"]}}
        for name, home in machines.items()
    }
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard": False}}
    with dask.config.set(embedded_cluster_config()):
        spec = SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.ERROR)
    yield spec
    spec.close()


@pytest.fixture
def s3(s3_env):
    import s3fs

    return s3fs.S3FileSystem()


class DriveUser(LightningWork):
    """Puts a folder from its machine's working directory, or gets it on another machine."""

    def __init__(self, machine: str):
        super().__init__(cloud_compute=CloudCompute(machine))
        self.drive = Drive("lit://shared")
        self.results = []
        self.cwd = None

    def run(self, action: str):
        self.cwd = os.getcwd()
        data = pathlib.Path("data")
        if action == "put":
            (data / "sub").mkdir(parents=True, exist_ok=True)
            (data / "a.txt").write_text("alpha")
            (data / "sub" / "b.txt").write_text("beta")
            self.drive.put("data")
            self.results = [self.drive.list(), self.drive.list("data")]
            return
        text = self.drive.get("data/a.txt").read_text()
        folder = str(self.drive.get("data", overwrite=True))
        files = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())
        self.results = [text, folder, files, self.drive.list(component_name="root.producer")]


class DriveFlow(LightningFlow):
    def __init__(self):
        super().__init__()
        self.producer = DriveUser("m1")
        self.consumer = DriveUser("m2")

    def run(self):
        self.producer.run("put")
        self.consumer.run("get")
        self.stop("done")


def test_a_drive_on_s3_between_two_machines(run_app, machines, s3):
    app = run_app(DriveFlow(), storage=STORAGE)
    root = app.root
    assert root.producer.cwd == str(machines["m1"]) and root.consumer.cwd == str(machines["m2"])
    assert root.producer.results == [["data"], ["data/a.txt", "data/sub"]]
    assert root.consumer.results == ["alpha", str(machines["m2"] / "data"), ["a.txt", "sub/b.txt"], ["data"]]
    assert (machines["m2"] / "data" / "sub" / "b.txt").read_text() == "beta"
    assert sorted(s3.find(f"{BUCKET}/root/drives/shared")) == [
        f"{BUCKET}/root/drives/shared/root.producer/data/a.txt",
        f"{BUCKET}/root/drives/shared/root.producer/data/sub/b.txt"]


class Fit(LightningWork):
    def __init__(self):
        super().__init__(cloud_compute=CloudCompute("m1"))
        self.table = None

    def run(self):
        self.table = Payload({"rows": [bytes([n % 256]) * 1024 for n in range(2048)]})


class Use(LightningWork):
    def __init__(self):
        super().__init__(cloud_compute=CloudCompute("m2"))
        self.rows = None

    def run(self, table: Payload):
        rows = table.value["rows"]
        self.rows = [len(rows), all(row == bytes([n % 256]) * 1024 for n, row in enumerate(rows))]


class PayloadFlow(LightningFlow):
    def __init__(self):
        super().__init__()
        self.fit = Fit()
        self.use = Use()

    def run(self):
        self.fit.run()
        self.use.run(self.fit.table)
        self.stop("done")


def test_a_large_payload_goes_through_s3(run_app, s3):
    app = run_app(PayloadFlow(), storage=STORAGE)
    assert app.root.use.rows == [2048, True]
    stored = s3.find(f"{BUCKET}/root/apps/{app.app_id}/payloads")
    assert len(stored) == 1 and s3.size(stored[0]) > 2 * MiB


def test_a_large_file_is_streamed_through_s3(run_app, machines):
    size = 128 * MiB  # the local test moves 256 MiB; here the S3 server (in this process) sets the pace
    app = run_app(BigFlow(BigFile(size, machine="m1"), BigFile(size, machine="m2")), storage=STORAGE)
    producer, consumer = app.root.producer, app.root.consumer
    assert producer.digest == consumer.digest
    assert os.path.getsize(machines["m2"] / "big.bin") == size
    for work in (producer, consumer):  # bounded chunks: a few of 5 MiB at a time, never the whole file
        assert work.peak_traced < 64 * MiB, work.peak_traced
        assert work.rss_growth < 64 * MiB, work.rss_growth


class Maker(LightningWork):
    def __init__(self, machine: str, relative: str, keep_running: bool = False):
        super().__init__(parallel=keep_running, cloud_compute=CloudCompute(machine))
        self.out = None
        self.release = False
        self._relative = relative
        self._keep_running = keep_running

    def run(self, text: str):
        target = pathlib.Path(self._relative)  # relative: in this machine's working directory
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        self.out = Path(self._relative)
        deadline = time.monotonic() + 120
        while self._keep_running and not self.release and time.monotonic() < deadline:
            time.sleep(0.02)


class Consumer(LightningWork):
    def __init__(self, machine: str):
        super().__init__(cloud_compute=CloudCompute(machine))
        self.seen = {}

    def run(self, tag: str, path: Path):
        self.seen[tag] = {"cwd": os.getcwd(), "text": path.read_text(), "origin": path.origin_name}


class PathFlow(LightningFlow):
    def __init__(self, retire=None):
        super().__init__()
        self.maker = Maker("m1", "out/model.txt")
        self.live = Maker("m1", "live/now.txt", keep_running=True)
        self.consumer = Consumer("m2")
        self._retire = retire

    def run(self):
        self.live.run("streamed")
        if self.live.out is not None:  # its call still runs on m1: m2 asks m1 for the file
            self.consumer.run("live", self.live.out)
            if self.consumer.has_succeeded:
                self.live.release = True
        if not self.live.has_succeeded:
            return
        self.maker.run("kept")
        if self._retire is not None:
            self._retire()  # the producer's worker is gone: the copy kept in S3 remains
            self._retire = None
        self.consumer.run("kept", self.maker.out)
        self.stop("done")


def test_paths_between_machines_while_running_and_once_the_worker_is_gone(run_app, machines, s3, cluster):
    """Last of the module: it ends worker m1."""
    from distributed import Client

    with Client(cluster, set_as_default=False) as client:
        m1 = next(a for a, w in client.scheduler_info(n_workers=-1)["workers"].items() if w["name"] == "m1")
        retire = lambda: client.retire_workers([m1], close_workers=True)  # noqa: E731
        app = run_app(PathFlow(retire=retire), storage=STORAGE)
    seen = app.root.consumer.seen
    assert seen["live"] == {"cwd": str(machines["m2"]), "text": "streamed", "origin": "root.live"}
    assert seen["kept"] == {"cwd": str(machines["m2"]), "text": "kept", "origin": "root.maker"}
    assert (machines["m2"] / "out" / "model.txt").read_text() == "kept"
    assert (machines["m1"] / "out" / "model.txt").read_text() == "kept"
    prefix = f"{BUCKET}/root/apps/{app.app_id}/paths"
    assert s3.cat(f"{prefix}/root.maker/rel/out/model.txt") == b"kept"
    assert s3.cat(f"{prefix}/root.live/rel/live/now.txt") == b"streamed"


def test_following_a_drive_brings_only_what_changed(s3_env, tmp_path, monkeypatch):
    # How TensorBoardWork follows the runs a trainer puts in a drive: every few seconds, for as long as it
    # serves. Bringing the whole drive each time would re-download every checkpoint from the object store.
    monkeypatch.setenv("LIGHTNB_STORAGE", f"{STORAGE}/following")
    run = tmp_path / "trainer" / "run"
    run.mkdir(parents=True)
    (run / "events.1").write_text("one")
    (run / "last.ckpt").write_text("AAAA")
    trainer = Drive("lit://runs", component_name="root.trainer", root_folder=str(tmp_path / "trainer"))
    trainer.put("run")
    follower = Drive("lit://runs", root_folder=str(tmp_path / "follower"))
    seen: dict = {}

    def refresh() -> dict[str, tuple[str, int]]:
        follower._refresh("run", seen)
        return {file.name: (file.read_text(), file.stat().st_ino) for file in (tmp_path / "follower" / "run").iterdir()}

    first = refresh()
    assert {name: text for name, (text, _) in first.items()} == {"events.1": "one", "last.ckpt": "AAAA"}
    assert refresh() == first  # nothing changed: no file was brought again (each would be a new file)

    (run / "last.ckpt").write_text("BBBB")  # the same size, another content
    (run / "events.2").write_text("two")
    trainer.put("run")
    third = refresh()
    assert third["events.1"] == first["events.1"]
    assert third["last.ckpt"][0] == "BBBB" and third["events.2"][0] == "two"

    (tmp_path / "follower" / "run" / "events.1").unlink()  # a local copy gone is brought again
    assert refresh()["events.1"][0] == "one"


class Once(LightningWork):
    def __init__(self):
        super().__init__()
        self.runs = 0
        self.result = None

    def run(self):
        self.runs += 1
        self.result = Payload({"weights": [1.0, 2.0]})


class OnceFlow(LightningFlow):
    def __init__(self):
        super().__init__()
        self.once = Once()

    def run(self):
        self.once.run()
        if self.once.has_succeeded:
            self.stop(f"ran {self.once.runs} time(s)")


def test_a_durable_apps_record_lives_on_s3_and_an_app_resumes_from_it(cluster):
    from lightnb import LightningApp
    from lightnb.storage.record import list_records

    first = LightningApp(OnceFlow(), cluster=cluster, storage=STORAGE, name="on-s3").start()
    first.wait(120)
    [record] = [found for found in list_records(STORAGE) if found.name == "on-s3"]
    assert record.stage == "stopped" and record.components["root.once"]["vars"]["runs"] == 1

    again = LightningApp(OnceFlow(), cluster=cluster, storage=STORAGE, name="on-s3", resume=True).start()
    again.wait(120)
    assert again.end_message == "ran 1 time(s)"  # the succeeded call was not run again
    assert again.root.once.result.value == {"weights": [1.0, 2.0]}
    assert "root.once" in again.resumed.restored
