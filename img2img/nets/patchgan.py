"""The pix2pix PatchGAN discriminator.

``n_layers`` strided 4x4 convs (64, 128, 256 channels for ndf 64), one
stride-1 4x4 conv (512), then a stride-1 4x4 conv to one logit per patch.
With n_layers=3 each logit sees a 70x70 patch and a 256x256 input gives a
30x30 map.  pix2pix feeds it the channel concatenation of (A, B).
``norm`` as for the generators (batch: BatchNorm with running statistics).
:class:`PixelDiscriminator` is the 1x1 variant.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .norm import conv_bias, norm_layer


class PatchDiscriminator(nn.Module):
    def __init__(self, input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers.append(nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=conv_bias(norm)))
            nl = norm_layer(norm, ndf * mult, stats="running")
            layers += ([nl] if nl is not None else []) + [nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, input_nc, H, W) -> (N, 1, H/8 - 2, W/8 - 2) logits (30x30 for 256x256)."""
        return self.net(x)


class PixelDiscriminator(nn.Module):
    """The 1x1 PatchGAN ("PixelGAN" in the pix2pix paper): one logit per pixel, judging colour only.

    (N, input_nc, H, W) -> (N, 1, H, W): 1x1 convs ndf -> 2 ndf -> 1, LeakyReLU(0.2), norm on the second."""

    def __init__(self, input_nc: int = 6, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        nl = norm_layer(norm, 2 * ndf, stats="running")
        self.net = nn.Sequential(nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Conv2d(ndf, 2 * ndf, 1, bias=conv_bias(norm)), *([nl] if nl is not None else []),
                                 nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(2 * ndf, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def receptive_field(n_layers: int = 3) -> int:
    """Receptive field of one output logit, in input pixels (70 for n_layers=3)."""
    strides = [2] * n_layers + [1, 1]        # every conv is 4x4
    rf, jump = 1, 1
    for s in strides:
        rf += 3 * jump
        jump *= s
    return rf
