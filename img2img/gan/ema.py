"""Exponential moving averages: of logged losses (for display) and of generator weights."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


class EMAMeters:
    """Bias-corrected EMA of named scalars (decay 0.99 by default), resumable via state_dict."""

    def __init__(self, decay: float = 0.99):
        self.decay = decay
        self.values: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def update(self, logs: dict[str, float]) -> None:
        for k, v in logs.items():
            n = self.counts.get(k, 0) + 1
            self.counts[k] = n
            self.values[k] = self.decay * self.values.get(k, 0.0) + (1 - self.decay) * float(v)

    def __getitem__(self, k: str) -> float:
        return self.values[k] / (1 - self.decay ** self.counts[k])

    def smoothed(self) -> dict[str, float]:
        return {k: self[k] for k in self.values}

    def state_dict(self) -> dict:
        return {"decay": self.decay, "values": dict(self.values), "counts": dict(self.counts)}

    def load_state_dict(self, s: dict) -> None:
        self.decay, self.values, self.counts = s["decay"], dict(s["values"]), dict(s["counts"])


class WeightEMA:
    """A copy of a network whose parameters track an EMA of the original's (Polyak averaging).

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` so early averages are not
    dominated by the random initialisation; for the first ``start`` updates the copy just
    follows the model (n counts the updates after those).  Buffers (BatchNorm running
    stats) are copied.
    """

    def __init__(self, model: nn.Module, decay: float, start: int = 0):
        self.decay, self.start = decay, start
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        n = self.updates - self.start
        d = 0.0 if n <= 0 else min(self.decay, (1 + n) / (10 + n))
        src = [p.detach() for p in model.parameters()]
        dst = list(self.model.parameters())
        torch._foreach_lerp_(dst, src, 1.0 - d)
        for b_dst, b_src in zip(self.model.buffers(), model.buffers()):
            b_dst.copy_(b_src)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "model": self.model.state_dict()}

    def load_state_dict(self, s: dict) -> None:
        self.decay, self.updates = s["decay"], s["updates"]
        self.model.load_state_dict(s["model"])
