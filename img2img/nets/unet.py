"""The pix2pix U-Net generator.

Encoder level i: Conv 4x4 stride 2 (+ BatchNorm, except on the first and the
innermost level), each level after the first preceded by LeakyReLU(0.2).
Decoder level i: ReLU, ConvTranspose 4x4 stride 2, BatchNorm (Tanh instead on
the outermost level), dropout 0.5 on the three innermost levels; its output
is concatenated with the encoder output of the level above (the skip).
``norm="instance"`` or ``"none"`` replaces the BatchNorms (convolutions then have biases);
``upsample`` replaces the transposed convolutions (:mod:`img2img.nets.upsample`).

Shapes for depth 8, ngf 64 and a (N, 3, 256, 256) input::

    enc: 64@128 128@64 256@32 512@16 512@8 512@4 512@2 512@1
    dec: 512@2 (+512) 512@4 (+512) 512@8 (+512) 512@16 (+512)
         256@32 (+256) 128@64 (+128) 64@128 (+64) 3@256
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .norm import conv_bias, norm_layer
from .upsample import up


class UNetGenerator(nn.Module):
    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, depth: int = 8,
                 dropout: float = 0.5, norm_stats: str = "sample", norm: str = "batch",
                 upsample: str = "convtranspose"):
        super().__init__()
        if depth < 2:
            raise ValueError("U-Net depth must be at least 2")
        self.depth = depth
        ch = [ngf * min(2 ** i, 8) for i in range(depth)]   # encoder output channels per level
        bias = conv_bias(norm)

        def normed(conv: nn.Module, channels: int) -> list[nn.Module]:
            n = norm_layer(norm, channels, stats=norm_stats)
            return [conv] + ([n] if n is not None else [])

        self.down = nn.ModuleList([nn.Conv2d(input_nc, ch[0], 4, 2, 1, bias=bias)])
        for i in range(1, depth):
            conv = nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1, bias=bias)
            layers: list[nn.Module] = [nn.LeakyReLU(0.2, inplace=True)]
            layers += [conv] if i == depth - 1 else normed(conv, ch[i])      # no norm at the innermost level
            self.down.append(nn.Sequential(*layers))

        self.up = nn.ModuleList()
        for i in reversed(range(depth)):                    # innermost first
            in_c = ch[i] if i == depth - 1 else 2 * ch[i]
            if i == 0:
                layers = [nn.ReLU(inplace=True), up(upsample, in_c, output_nc, 4), nn.Tanh()]
            else:
                layers = [nn.ReLU(inplace=True), *normed(up(upsample, in_c, ch[i - 1], 4, bias), ch[i - 1])]
                if dropout > 0 and i >= depth - 3:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, input_nc, H, W) in [-1, 1] -> (N, output_nc, H, W) in [-1, 1]; H, W multiples of 2^depth."""
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()
        for layer in self.up:
            x = layer(x)
            if skips:
                x = torch.cat([skips.pop(), x], 1)
        return x
