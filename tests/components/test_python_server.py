"""PythonServer, the reference's serving contract (setup / typed predict), on a real cluster over HTTP."""

from __future__ import annotations

import httpx
import pytest
from components_support import wait_for
from pydantic import BaseModel

from lightnb import LightningApp, LightningFlow
from lightnb.components import Number, PythonServer, Text


class Shout(PythonServer):
    """As a reference app writes it: types given to __init__, the model made in setup()."""

    def __init__(self, **kwargs):
        super().__init__(input_type=Text, output_type=Text, **kwargs)

    def setup(self, suffix):
        self._model = lambda text: text.upper() + suffix

    def predict(self, request):
        return {"text": self._model(request.text)}


class Features(BaseModel):
    x: float


class Double(PythonServer):
    def __init__(self):
        super().__init__(input_type=Features, output_type=Number)

    def predict(self, request):
        return Number(prediction=request.x * 2)


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.shout = Shout()
        self.double = Double()

    def run(self):
        self.shout.run("!")
        self.double.run()


def test_setup_and_typed_predict_answer_post_predict(cluster, worker_processes):
    flow = Root()
    app = LightningApp(flow, cluster=cluster).start()
    try:
        shout = wait_for(lambda: flow.shout.url, timeout=120, what="the url of shout")
        double = wait_for(lambda: flow.double.url, timeout=120, what="the url of double")
        assert shout == f"http://127.0.0.1:{flow.shout.port}"  # as the reference: url + "/predict"
        answer = httpx.post(shout + "/predict", json={"text": "hello"}, timeout=10)
        assert answer.status_code == 200 and answer.json() == {"text": "HELLO!"}
        assert httpx.post(double + "/predict", json={"x": 1.5}, timeout=10).json() == {"prediction": 3.0}
        bad = httpx.post(double + "/predict", json={"y": 1}, timeout=10)
        assert bad.status_code == 422 and "x" in bad.text  # pydantic names the missing field
        assert "/predict" in httpx.get(double + "/openapi.json", timeout=10).json()["paths"]
    finally:
        app.stop()
    assert flow.shout.has_stopped and flow.double.has_stopped
    worker_processes.assert_none_left()


def test_the_default_types_and_bad_arguments():
    class Echo(PythonServer):
        def predict(self, request):
            return {"prediction": request.payload}

    echo = Echo()
    assert set(echo.input_type.model_fields) == {"payload"}
    assert set(echo.output_type.model_fields) == {"prediction"}
    with pytest.raises(TypeError, match="input_type must be a pydantic BaseModel class"):
        Echo(input_type=dict)
    with pytest.raises(TypeError, match="unexpected arguments 'workers'"):
        Echo(workers=4)
