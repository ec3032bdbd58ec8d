"""A Gradio work as people organise them: in a helper module next to the notebook, its components set as
class attributes (the workers cannot import this module: lightnb ships it by value)."""

from __future__ import annotations

import gradio as gr

from lightnb.components import ServeGradio


class Shout(ServeGradio):
    inputs = gr.Textbox(label="text")
    outputs = gr.Textbox(label="shouted")

    def build_model(self):
        return str.upper

    def predict(self, text):
        return self.model(text)
