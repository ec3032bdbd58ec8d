"""A tiny model and data the component tests train: y = slope·x + 1 plus noise, generated (no downloads)."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightnb.components import ServeGradio


class Regressor(L.LightningModule):
    def __init__(self, hidden: int = 8, lr: float = 0.05, slow: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(1, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        if self.hparams.slow:
            import time

            time.sleep(self.hparams.slow)  # a longer training, to stop it in the middle
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class NoisyLine(L.LightningDataModule):
    def __init__(self, n: int = 256, batch_size: int = 32, seed: int = 0, slope: float = 2.0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        x = torch.rand(n, 1, generator=generator) * 2 - 1
        y = slope * x + 1 + 0.05 * torch.randn(n, 1, generator=generator)
        split = n * 3 // 4
        self.train_set = TensorDataset(x[:split], y[:split])
        self.val_set = TensorDataset(x[split:], y[split:])
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)


class Deploy(ServeGradio):
    """The line model behind a Gradio interface: a number in, a number out."""

    inputs = "number"
    outputs = "number"
    title = "y = f(x)"

    def predict(self, x):
        with torch.no_grad():
            return float(self.model(torch.tensor([[float(x)]]))[0, 0])
