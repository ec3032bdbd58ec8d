"""ModelServer on a real cluster: a checkpoint TrainerWork wrote, served over HTTP on loopback by uvicorn."""

from __future__ import annotations

import os

import httpx
from components_models import NoisyLine, Regressor
from components_support import RunWork, wait_for
from pydantic import BaseModel

from lightnb import LightningApp, LightningFlow
from lightnb.components import ModelServer, TrainerWork


class TrainThenServe(LightningFlow):
    """The serving pattern: train, then serve the best checkpoint as a REST API."""

    def __init__(self, root_dir):
        super().__init__()
        self.trainer = TrainerWork(Regressor, NoisyLine, max_epochs=8, monitor="val_loss", root_dir=root_dir,
                                   seed=0)
        self.server = ModelServer(module_class=Regressor)

    def run(self):
        self.trainer.run()
        if self.trainer.best_checkpoint and self.server.checkpoint != self.trainer.best_checkpoint:
            self.server.checkpoint = self.trainer.best_checkpoint
        self.server.run()


def test_the_best_checkpoint_of_a_training_answers_predict_and_health(cluster, tmp_path, worker_processes):
    flow = TrainThenServe(tmp_path)
    app = LightningApp(flow, cluster=cluster)
    app.start()
    try:
        url = wait_for(lambda: flow.server.url, timeout=300, what="the server's url")
        assert url == f"http://127.0.0.1:{flow.server.port}/"
        health = httpx.get(url + "health", timeout=10).json()
        assert health["status"] == "ok" and health["model_loaded"]
        assert health["checkpoint"] == str(flow.trainer.best_checkpoint)
        answer = httpx.post(url + "predict", json={"inputs": [[0.5], [-0.5]]}, timeout=10)
        assert answer.status_code == 200
        high, low = (row[0] for row in answer.json()["outputs"])
        assert abs(high - 2.0) < 0.5 and abs(low - 0.0) < 0.5  # it learned y = 2x + 1

        bad = httpx.post(url + "predict", json={"values": [1]}, timeout=10)
        assert bad.status_code == 422 and "inputs" in bad.text  # pydantic names the missing field
        assert "/predict" in httpx.get(url + "openapi.json", timeout=10).json()["paths"]
    finally:
        app.stop()
    assert flow.server.has_stopped
    assert flow.server.url is None
    try:
        httpx.get(url + "health", timeout=2)
        raise AssertionError("the server still answers after the app stopped")
    except httpx.TransportError:
        pass
    worker_processes.assert_none_left()


class Celsius(BaseModel):
    celsius: float


class Fahrenheit(BaseModel):
    fahrenheit: float
    served_by: str


class Thermometer(ModelServer):
    """A subclass with its own request and response models and no checkpoint at all."""

    input_type = Celsius
    output_type = Fahrenheit

    def build_model(self):
        return lambda c: c * 9 / 5 + 32

    def predict(self, request):
        return Fahrenheit(fahrenheit=self.model(request.celsius), served_by=self.name)


def test_a_subclass_serves_its_own_request_and_response_models(cluster):
    server = Thermometer()
    app = LightningApp(RunWork(server), cluster=cluster)
    app.start()
    try:
        url = wait_for(lambda: server.url, what="the server's url")
        answer = httpx.post(url + "predict", json={"celsius": 100}, timeout=10).json()
        assert answer == {"fahrenheit": 212.0, "served_by": "root.work"}
        assert httpx.post(url + "predict", json={"celsius": "hot"}, timeout=10).status_code == 422
    finally:
        app.stop()


def test_a_new_checkpoint_is_served_without_a_restart_and_a_bad_one_is_refused(cluster, checkpoints):
    server = ModelServer(checkpoints["up"], module_class=Regressor)
    app = LightningApp(RunWork(server), cluster=cluster)
    app.start()
    try:
        url = wait_for(lambda: server.url, what="the server's url")

        def predict() -> float:
            return httpx.post(url + "predict", json={"inputs": [[0.5]]}, timeout=10).json()["outputs"][0][0]

        assert predict() > 1.5 and server.model_version == 1
        server.checkpoint = checkpoints["down"]  # the flow deploys another model
        wait_for(lambda: server.loaded_checkpoint == checkpoints["down"], what="the new checkpoint")
        assert server.url == url and server.model_version == 2  # same server, new model
        assert predict() < 0.5

        server.checkpoint = checkpoints["down"] + ".missing"
        wait_for(lambda: server.load_error, what="the load error")
        assert ".missing" in server.load_error
        assert server.loaded_checkpoint == checkpoints["down"] and predict() < 0.5  # still serving
        assert server.is_running
    finally:
        app.stop()


def test_without_a_checkpoint_predict_says_there_is_no_model_yet(cluster):
    server = ModelServer(module_class=Regressor)
    app = LightningApp(RunWork(server), cluster=cluster)
    app.start()
    try:
        url = wait_for(lambda: server.url, what="the server's url")
        assert httpx.get(url + "health", timeout=10).json()["model_loaded"] is False
        answer = httpx.post(url + "predict", json={"inputs": [[0.5]]}, timeout=10)
        assert answer.status_code == 503 and "checkpoint" in answer.json()["detail"]
    finally:
        app.stop()


class TrainThenDeploy(LightningFlow):
    """Trains, then deploys the best checkpoint once told to (after the test removed the trainer's files)."""

    def __init__(self, root_dir):
        super().__init__()
        self.trainer = TrainerWork(Regressor, NoisyLine, max_epochs=6, root_dir=root_dir, seed=0)
        self.server = ModelServer(module_class=Regressor)
        self.deploy = False

    def run(self):
        self.trainer.run()
        if self.deploy:
            self.server.checkpoint = self.trainer.best_checkpoint
            self.server.run()


def test_the_checkpoint_path_reaches_the_server_from_the_apps_storage(cluster, tmp_path):
    import shutil

    flow = TrainThenDeploy(tmp_path / "runs")
    app = LightningApp(flow, cluster=cluster, storage=str(tmp_path / "storage"))
    app.start()
    try:
        wait_for(lambda: flow.trainer.has_succeeded, timeout=300, what="the training")
        checkpoint = flow.trainer.best_checkpoint
        assert checkpoint.origin_name == "root.trainer"  # a lightnb Path the trainer made
        shutil.rmtree(tmp_path / "runs")  # the trainer's own files are gone (as on another machine)
        flow.deploy = True
        url = wait_for(lambda: flow.server.url, timeout=180, what="the server's url")
        answer = httpx.post(url + "predict", json={"inputs": [[0.5]]}, timeout=10).json()
        assert abs(answer["outputs"][0][0] - 2.0) < 0.5
        assert os.path.isfile(checkpoint)  # brought back from the app's storage
    finally:
        app.stop()
