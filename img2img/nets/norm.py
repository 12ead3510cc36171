"""Normalisation layers: BatchNorm with a choice of statistics at inference, and the ``--norm`` factory.

pix2pix trains with batch size 1, so BatchNorm's batch statistics are the
statistics of one image (instance normalisation).  The paper runs the
generator at test time "in exactly the same manner as during training",
i.e. with per-image statistics; the running averages collected during
training are a poor match for them.  ``stats="sample"`` reproduces the
paper's behaviour without its dependence on batch composition: in eval mode
every image is normalised by its own statistics, so an image gives the same
output alone or inside a batch of 8.  ``stats="running"`` is the usual
PyTorch eval behaviour.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class BatchNorm2d(nn.BatchNorm2d):
    def __init__(self, num_features: int, stats: str = "sample", **kw):
        super().__init__(num_features, **kw)
        if stats not in ("sample", "running"):
            raise ValueError(f"stats must be 'sample' or 'running', got {stats!r}")
        self.stats = stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.stats == "running":
            return super().forward(x)
        return F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", stats={self.stats}"


def set_norm_stats(module: nn.Module, stats: str) -> nn.Module:
    """Switch every :class:`BatchNorm2d` in ``module`` to ``stats`` ("sample" | "running")."""
    for m in module.modules():
        if isinstance(m, BatchNorm2d):
            m.stats = stats
    return module


NORMS = ("batch", "instance", "none")


def norm_layer(norm: str, channels: int, stats: str = "sample") -> nn.Module | None:
    """The normalisation after a convolution: ``batch`` (:class:`BatchNorm2d` with ``stats``),
    ``instance`` (InstanceNorm2d without affine parameters, as in CycleGAN), ``none`` (None)."""
    if norm == "batch":
        return BatchNorm2d(channels, stats=stats)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "none":
        return None
    raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")


def conv_bias(norm: str) -> bool:
    """Convolutions before a BatchNorm need no bias (its shift does the job); otherwise they have one."""
    return norm != "batch"
