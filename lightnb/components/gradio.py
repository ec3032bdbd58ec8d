"""``ServeGradio``: a Gradio interface for a model, served from a work, redeployed without a restart."""

from __future__ import annotations

import os
from typing import Any

from ._model import ModelServing
from ._serving import serve_asgi


class ServeGradio(ModelServing):
    """Serve a model behind a Gradio interface, as the original framework's ``ServeGradio`` did.

    Subclass it: set ``inputs`` and ``outputs`` (Gradio components, or their short names such as
    ``"number"``, ``"text"``, ``"image"``), implement ``predict(...)`` (one argument per input) and, unless
    ``module_class`` is given, ``build_model()``. ``self.model`` is what ``build_model()`` returned.

    The interface is served on 127.0.0.1 on a free port; ``url`` is set once it answers. Through the
    notebook's proxy (``{base_url}proxy/{port}/``) its links follow the proxy's prefix, so it works on
    JupyterHub and Binder too. Its API answers ``POST /gradio_api/call/predict``.

    Set ``checkpoint`` on the running work (from the flow) to deploy another model: it is loaded beside the
    one being served and swapped in, without restarting the server (``loaded_checkpoint``, ``model_version``
    say what is served).

    Example
    -------
    >>> class Doubler(ServeGradio):
    ...     inputs = "number"
    ...     outputs = "number"
    ...     def build_model(self):
    ...         return lambda x: 2 * x
    ...     def predict(self, x):
    ...         return self.model(x)
    >>> class Deploy(ServeGradio):              # a Lightning checkpoint: the model is loaded for you
    ...     inputs, outputs = "number", "number"
    ...     def predict(self, x):
    ...         return float(self.model(torch.tensor([[x]]))[0, 0])
    >>> Deploy(checkpoint="best.ckpt", module_class=MyModel)
    """

    inputs: Any = None
    outputs: Any = None
    examples: Any = None
    title: str | None = None
    description: str | None = None

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Turn the interface's inputs into its outputs, usually with ``self.model``."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict(...)")

    def build_interface(self) -> Any:
        """The Gradio ``Blocks`` to serve; the default is an ``Interface`` over :meth:`predict`."""
        import gradio as gr

        if self.inputs is None or self.outputs is None:
            raise TypeError(f"{type(self).__name__} must set inputs and outputs (Gradio components or names "
                            "such as 'number', 'text', 'image')")
        return gr.Interface(fn=self.predict, inputs=_fresh(self.inputs), outputs=_fresh(self.outputs),
                            examples=self.examples,
                            title=self.title, description=self.description, api_name="predict",
                            flagging_mode="never", analytics_enabled=False)

    def start_server(self, host: str, port: int | None) -> tuple[Any, int]:
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine
        import gradio as gr
        from fastapi import FastAPI

        # Mounted on our own app and server (rather than launch()): started and stopped with the work, on
        # the port it bound, and reachable through the notebook's proxy (see behind_notebook_proxy).
        app = gr.mount_gradio_app(FastAPI(), self.build_interface(), path="", ssr_mode=False,
                                  footer_links=["api"])
        return serve_asgi(app, host, port, self.name)


def _fresh(components: Any) -> Any:
    """Components made anew in this process from their settings.

    Gradio numbers every block it creates, per process, and refuses two blocks with one number in an
    interface. A component set as a class attribute was made (and numbered) where the class was defined, and
    comes to the worker inside the class: its number can be one this process gives to another block.
    """
    import gradio as gr

    if isinstance(components, (list, tuple)):
        return [_fresh(component) for component in components]
    if isinstance(components, gr.components.Component):
        return type(components)(**components.recover_kwargs(components.get_config()), render=False)
    return components
