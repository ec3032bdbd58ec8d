"""Serve a model trained by train.py as a Gradio page: x in, the model's guess of sin(3x) out.

    python serve.py --model model.pt --port 7860

A plain script: it knows nothing about lightnb or notebooks.
"""

import argparse

import gradio as gr
import torch

from train import make_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="model.pt")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()

    saved = torch.load(args.model)
    model = make_model(saved["hidden"])
    model.load_state_dict(saved["state_dict"])
    model.eval()

    def predict(x: float) -> float:
        with torch.no_grad():
            return round(float(model(torch.tensor([[float(x)]]))[0, 0]), 4)

    demo = gr.Interface(predict, gr.Number(label="x"), gr.Number(label="sin(3x), as the model learned it"),
                        examples=[[-0.5], [0.0], [0.5]], title="A model trained by train.py")
    print(f"serving {args.model} on http://{args.host}:{args.port}/", flush=True)
    demo.launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
