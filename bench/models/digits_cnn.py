"""A small CNN trained on scikit-learn's digits (no download): 1x8x8 → 10 classes.

The one copy that the tests and the benchmarks share. Trained in seconds on two cores, it is a
real trained model with a real held-out split, for the convolutional paths (static INT8,
channel pruning) where the bundled MiniLM has none.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn


class DigitsCNN(nn.Module):
    """Conv2d → BatchNorm → ReLU → Conv2d → ReLU → MaxPool → Linear, for 1x8x8 digit images."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        return self.fc(x.flatten(1))


def digits_split(seed: int = 0) -> dict[str, np.ndarray]:
    """sklearn digits as float32 [N,1,8,8] in [0,1], split 75/25 (stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target.astype(np.int64), test_size=0.25, random_state=seed, stratify=digits.target)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def train_digits_cnn(data: dict, epochs: int = 10, seed: int = 0, build: Callable[[], nn.Module] = DigitsCNN) -> nn.Module:
    """Adam, batches of 64, ``epochs`` passes over ``data["x_train"]``; the same weights for the same seed.
    ``build``: another architecture for the same 1x8x8 → 10 task (tests train a depthwise CNN this way)."""
    torch.manual_seed(seed)
    model, xt, yt = build(), torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()
