"""The apps the multi-host tests run, as app files (``lightnb run`` takes them as they are; the tests load the
same files for ``LightningApp(cluster=...)``). Their code reaches the workers by pickling, as on real hosts."""

# Training → Path → serving, with a Drive and a Payload: the trainer writes a model file (a Path), puts its
# metrics in a drive and returns its weights as a Payload; the server, a long-running work on another call,
# loads the model through the Path, checks it against the Payload, reads the metrics from the drive, and
# answers the requests the flow pushes to it while it runs.
PIPELINE_APP = '''\
import time

from lightnb import Drive, LightningApp, LightningFlow, LightningWork, Path, Payload


def where():
    from distributed import get_worker

    return get_worker().address


class Train(LightningWork):
    def __init__(self):
        super().__init__()
        self.progress = 0.0
        self.model = None
        self.weights = None
        self.loss = None
        self.where = ""
        self.drive = Drive("lit://runs")

    def run(self, epochs):
        self.where = where()
        weights = [0.0, 0.0, 0.0]
        for epoch in range(epochs):
            weights = [w + 0.5 * (i + 1) for i, w in enumerate(weights)]
            self.progress = (epoch + 1) / epochs
            print(f"epoch {epoch + 1}: {weights}", flush=True)
        with open("model.txt", "w") as file:
            file.write(",".join(map(str, weights)))
        with open("metrics.txt", "w") as file:
            file.write(f"epochs={epochs} loss={1 / (1 + sum(weights)):.6f}")
        self.drive.put("metrics.txt")
        self.model = Path("model.txt")
        self.weights = Payload(weights)
        self.loss = round(1 / (1 + sum(weights)), 6)


class Serve(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.requests = []
        self.answers = {}
        self.metrics = ""
        self.ready = False
        self.where = ""
        self.drive = Drive("lit://runs")

    def run(self, model, weights):
        self.where = where()
        served = [float(x) for x in model.read_text().split(",")]
        assert served == weights.value, (served, weights.value)
        self.metrics = self.drive.get("metrics.txt", overwrite=True).read_text()
        self.ready = True
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for x in self.requests:
                if str(x) not in self.answers:
                    self.answers = {**self.answers, str(x): sum(w * x for w in served)}
            time.sleep(0.05)


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.train = Train()
        self.serve = Serve()
        self.result = None

    def run(self):
        self.train.run(4)
        if self.train.has_succeeded:
            self.serve.run(self.train.model, self.train.weights)
        if self.serve.ready and not self.serve.requests:
            self.serve.requests = [1, 2, 3]
        if len(self.serve.answers) == 3 and self.result is None:
            self.result = dict(self.serve.answers)
            self.serve.stop()
            self.stop(f"served {len(self.result)} answers")


app = LightningApp(Root())
'''

# A work that ticks for a while, reporting each tick, and leaves one marker in S3 per execution (a call run
# twice would leave two). LNB_TICKS, LNB_PACE: how many ticks and how far apart; LNB_LABEL: the marker folder;
# LNB_MACHINE: a CloudCompute name (a resource only one worker offers pins the work there).
TICKER_APP = '''\
import os
import time
import uuid

from lightnb import CloudCompute, LightningApp, LightningFlow, LightningWork


class Ticker(LightningWork):
    def __init__(self):
        super().__init__(cloud_compute=CloudCompute(os.environ.get("LNB_MACHINE", "default")))
        self.ticks = 0
        self.where = ""

    def run(self):
        import s3fs
        from distributed import get_worker

        self.where = get_worker().address
        s3fs.S3FileSystem().touch(f"lightnb-multihost/starts/{os.environ['LNB_LABEL']}/{uuid.uuid4().hex}")
        for _ in range(int(os.environ["LNB_TICKS"])):
            time.sleep(float(os.environ["LNB_PACE"]))
            self.ticks += 1
            print(f"tick {self.ticks} on {self.where}", flush=True)


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.ticker = Ticker()

    def run(self):
        self.ticker.run()
        if self.ticker.has_succeeded:
            self.stop(f"ticked {self.ticker.ticks} times")


app = LightningApp(Root())
'''
