"""``ModelServer``: a trained Lightning model as a REST API (FastAPI + uvicorn), served from a work."""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from ._model import ModelServing
from ._serving import serve_asgi


@cache
def default_types() -> tuple[type, type]:
    """The default request and response models: ``{"inputs": [[...], ...]}`` → ``{"outputs": [...]}``."""
    from pydantic import BaseModel, Field

    class PredictRequest(BaseModel):
        inputs: list[Any] = Field(description="A batch of model inputs (nested lists of numbers)")

    class PredictResponse(BaseModel):
        outputs: list[Any] = Field(description="The model's outputs for the batch")

    return PredictRequest, PredictResponse


class ModelServer(ModelServing):
    """Serve a model as a REST API: ``POST /predict`` with a pydantic request model, ``GET /health``.

    By default it loads ``module_class`` from ``checkpoint`` (a Lightning checkpoint) and answers
    ``{"inputs": [[...]]}`` with ``{"outputs": [...]}``: the inputs as a float tensor through the model.
    Subclass it for other shapes: set ``input_type`` / ``output_type`` (pydantic models) and implement
    ``predict(request)`` returning an ``output_type`` (or a dict of its fields); override
    ``build_model()`` for anything that is not a LightningModule checkpoint.

    Served on 127.0.0.1 on a free port (``url`` once it answers; the docs at ``url + "docs"``). Set
    ``checkpoint`` on the running work to deploy another model without restarting the server.

    Example
    -------
    >>> server = ModelServer(checkpoint="best.ckpt", module_class=Regressor)
    >>> # from a flow: server.run(); then, anywhere
    >>> httpx.post(server.url + "predict", json={"inputs": [[0.5], [1.0]]}).json()
    {'outputs': [[1.02], [2.01]]}
    """

    input_type: type | None = None
    output_type: type | None = None

    def predict(self, request: Any) -> Any:
        """Answer one request (an ``input_type`` instance) with the model; the default runs the inputs
        through the model as a float tensor."""
        import torch

        model = self.model
        device = next((p.device for p in model.parameters()), None) if hasattr(model, "parameters") else None
        inputs = torch.as_tensor(request.inputs, dtype=torch.float32, device=device)
        with torch.inference_mode():
            outputs = model(inputs)
        return {"outputs": outputs.tolist()}

    def health(self) -> dict[str, Any]:
        """What ``GET /health`` answers."""
        return {"status": "ok", "model_loaded": self.model is not None, "checkpoint": self.loaded_checkpoint,
                "model_version": self.model_version, "load_error": self.load_error}

    def build_app(self) -> Any:
        """The FastAPI app to serve; extend it to add routes."""
        from fastapi import FastAPI, HTTPException

        request_type, response_type = default_types()
        request_type = self.input_type or request_type
        response_type = self.output_type or response_type
        app = FastAPI(title=type(self).__name__, description=f"The model served by {self.name}")

        def predict(request: Any) -> Any:
            if self.model is None:
                raise HTTPException(503, f"no model is loaded yet ({self.name} has no checkpoint); set its "
                                         "checkpoint to deploy one")
            return self.predict(request)

        # FastAPI reads the body's model from the signature: give it the (user's) request type.
        predict.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=request_type)])
        predict.__annotations__ = {"request": request_type}
        app.post("/predict", response_model=response_type, summary="Run the model on a request")(predict)
        app.get("/health", summary="Whether the server and its model are up")(self.health)
        return app

    def start_server(self, host: str, port: int | None) -> tuple[Any, int]:
        return serve_asgi(self.build_app(), host, port, self.name)
