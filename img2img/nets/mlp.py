"""The MLP GAN of the original GAN paper's MNIST setup (Goodfellow et al., 2014).

Generator: z (default 100-d) -> Linear -> ReLU (hidden 128) -> Linear -> sigmoid
or tanh, reshaped to an image.  Discriminator: flattened image -> Linear ->
ReLU (hidden 128) -> Linear -> one logit.  Shapes for MNIST::

    G: 100 -> 128 -> 784 -> (1, 28, 28)        D: 784 -> 128 -> 1

Weights are Xavier-initialised by the model family (:func:`img2img.nets.init.init_xavier`).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn


class MLPGenerator(nn.Module):
    """(N, z_dim) -> (N, *out_shape); tanh output in [-1, 1], sigmoid in [0, 1]."""

    def __init__(self, z_dim: int = 100, out_features: int = 784, hidden: int = 128, out_act: str = "tanh",
                 out_shape: tuple[int, ...] | None = None):
        super().__init__()
        if out_act not in ("tanh", "sigmoid"):
            raise ValueError(f"out_act must be 'tanh' or 'sigmoid', got {out_act!r}")
        if out_shape is not None and math.prod(out_shape) != out_features:
            raise ValueError(f"out_shape {tuple(out_shape)} does not hold {out_features} values")
        self.z_dim = z_dim
        self.out_shape = tuple(out_shape) if out_shape is not None else (out_features,)
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(True), nn.Linear(hidden, out_features),
                                 nn.Tanh() if out_act == "tanh" else nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(z.shape[0], self.z_dim)).reshape(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """(N, ...) with ``in_features`` values per sample -> (N,) logits."""

    def __init__(self, in_features: int = 784, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(True), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).flatten()
