"""``PythonServer``: the reference's serving contract — ``setup()`` once, ``predict(request)`` per request,
typed with pydantic models — as a :class:`ModelServer` (FastAPI + uvicorn, served from a work).

The request and response models of the reference (``Image``, ``Number``, ``Category``, ``Text``) are built
on first use, so importing lightnb does not import pydantic.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ..core.compute import CloudCompute
from ..core.values import describe_type
from ..core.work import server_url
from ._serving import LOOPBACK
from .model_server import ModelServer

# What the server's model is when setup() kept none in self._model (the server still answers).
_SET_UP = object()


class PythonServer(ModelServer):
    """Serve ``predict(request)`` at ``POST /predict``, as the reference's ``PythonServer`` does.

    Subclass it: ``setup(*args, **kwargs)`` runs once where the work runs, before the server answers (it
    receives ``run()``'s arguments; load a model into ``self._model`` there), and ``predict(request)``
    answers one request — an ``input_type`` instance — with an ``output_type`` instance or a dict of its
    fields. FastAPI and pydantic check both: a request of the wrong shape gets a 422 naming the field.

    ``url`` is ``http://host:port`` once it answers (``url + "/predict"``, the API docs at ``url +
    "/docs"``); served on 127.0.0.1 on a free port unless ``host`` / ``port`` are given. Runs in parallel.

    Example
    -------
    >>> class Echo(PythonServer):
    ...     def __init__(self):
    ...         super().__init__(input_type=Text, output_type=Text)
    ...     def setup(self):
    ...         self._model = str.upper
    ...     def predict(self, request):
    ...         return {"text": self._model(request.text)}
    """

    def __init__(self, input_type: type | None = None, output_type: type | None = None, *,
                 host: str = LOOPBACK, port: int | None = None, parallel: bool = True, cache_calls: bool = True,
                 raise_exception: bool = True, cloud_compute: CloudCompute | None = None,
                 **unsupported: Any) -> None:
        unsupported.pop("start_with_flow", None)  # a work starts on its first call (see LightningWork.start)
        if unsupported:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {', '.join(map(repr, unsupported))}: "
                            "lightnb's PythonServer takes input_type, output_type, host, port, parallel, "
                            "cache_calls, raise_exception and cloud_compute")
        super().__init__(host=host, port=port, parallel=parallel, cache_calls=cache_calls,
                         raise_exception=raise_exception, cloud_compute=cloud_compute)
        for label, model in (("input_type", input_type), ("output_type", output_type)):
            if model is not None and not (isinstance(model, type) and callable(getattr(model, "model_validate",
                                                                                        None))):
                raise TypeError(f"{type(self).__name__} {label} must be a pydantic BaseModel class, not "
                                f"{describe_type(model)}")
        self._input_type = input_type
        self._output_type = output_type
        self._setup_arguments: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})

    # The reference's hooks --------------------------------------------------------------------------------
    def setup(self, *args: Any, **kwargs: Any) -> None:
        """Prepare what ``predict`` needs (load a model into ``self._model``); runs once per call of
        ``run()``, with its arguments, before the server answers."""

    def predict(self, request: Any) -> Any:
        """Answer one request (an ``input_type`` instance); override it."""
        raise NotImplementedError(f"{type(self).__name__} must define predict(request)")

    # On ModelServer -----------------------------------------------------------------------------------------
    @property
    def input_type(self) -> type:  # type: ignore[override]
        return self.__dict__.get("_input_type") or default_python_types()[0]

    @property
    def output_type(self) -> type:  # type: ignore[override]
        return self.__dict__.get("_output_type") or default_python_types()[1]

    def build_model(self) -> Any:
        args, kwargs = self._setup_arguments
        self.setup(*args, **kwargs)
        model = self.__dict__.get("_model")
        return model if model is not None else _SET_UP

    def _public_url(self, host: str, port: int) -> str:
        return server_url(host, port)  # as the reference: no trailing slash (url + "/predict")

    def run(self, *args: Any, **kwargs: Any) -> None:
        self._setup_arguments = (args, kwargs)
        super().run()


@cache
def default_python_types() -> tuple[type, type]:
    """The reference's default request and response: ``{"payload": ...}`` → ``{"prediction": ...}``."""
    from pydantic import BaseModel

    class DefaultInputData(BaseModel):
        payload: str

    class DefaultOutputData(BaseModel):
        prediction: str

    return DefaultInputData, DefaultOutputData


@cache
def _io_types() -> dict[str, type]:
    from pydantic import BaseModel

    class Image(BaseModel):
        """An image as a base64 string."""

        image: str | None = None

    class Number(BaseModel):
        prediction: float | None = None

    class Category(BaseModel):
        category: int | None = None

    class Text(BaseModel):
        text: str | None = None

    return {"Image": Image, "Number": Number, "Category": Category, "Text": Text}


IO_TYPES = ("Image", "Number", "Category", "Text")


def __getattr__(name: str) -> Any:
    if name in IO_TYPES:
        return _io_types()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
