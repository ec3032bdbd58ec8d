"""Fit a small MLP to y = sin(3x) + noise (data generated here), logging to TensorBoard.

    python train.py --lr 0.01 --epochs 30 --logdir runs --out model.pt

A plain script: it knows nothing about lightnb or notebooks.
"""

import argparse
import os

import torch
from torch.utils.tensorboard import SummaryWriter


def make_model(hidden: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(1, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))


def main() -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--logdir", default="runs", help="TensorBoard runs folder")
    parser.add_argument("--name", default=None, help="the run's name (default: lr_<lr>)")
    parser.add_argument("--out", default="model.pt", help="where to save the trained weights")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    x = torch.rand(512, 1) * 2 - 1
    y = torch.sin(3 * x) + 0.05 * torch.randn(512, 1)
    model = make_model(args.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    writer = SummaryWriter(os.path.join(args.logdir, args.name or f"lr_{args.lr}"))
    for epoch in range(1, args.epochs + 1):
        for batch in torch.randperm(len(x)).split(64):
            loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            epoch_loss = torch.nn.functional.mse_loss(model(x), y).item()
        writer.add_scalar("loss", epoch_loss, epoch)
        print(f"epoch {epoch}/{args.epochs}: loss {epoch_loss:.4f}", flush=True)
    writer.close()
    torch.save({"hidden": args.hidden, "state_dict": model.state_dict()}, args.out)
    print(f"saved {args.out}")
    return epoch_loss


if __name__ == "__main__":
    final_loss = main()
