"""The ResNet generator of CycleGAN (Zhu et al., 2017), after Johnson et al.'s style-transfer network.

In the papers' notation, with ngf = 64 and N residual blocks::

    c7s1-64, d128, d256, R256 x N, u128, u64, c7s1-out (Tanh)

* c7s1-k: 7x7 convolution, stride 1, reflection padding 3, normalisation, ReLU
  (the last one: no normalisation, Tanh instead of ReLU);
* dk: 3x3 convolution, stride 2 (halves the size), normalisation, ReLU;
* Rk: residual block, two 3x3 convolutions with reflection padding and
  normalisation (ReLU between them, optional dropout), added to its input;
* uk: 3x3 transposed convolution, stride 2 (doubles the size), normalisation, ReLU (or another
  ``upsample``: :mod:`img2img.nets.upsample`).

N = 9 for 256x256 images (11.4M parameters with instance norm), 6 for 128x128.
Input sides must be multiples of 4 (two halvings).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .norm import conv_bias, norm_layer
from .upsample import up


def _block(conv: nn.Module, norm: str, channels: int, act: nn.Module | None) -> list[nn.Module]:
    n = norm_layer(norm, channels)
    return [conv] + ([n] if n is not None else []) + ([act] if act is not None else [])


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str = "instance", dropout: float = 0.0):
        super().__init__()
        bias = conv_bias(norm)
        layers = [nn.ReflectionPad2d(1),
                  *_block(nn.Conv2d(channels, channels, 3, bias=bias), norm, channels, nn.ReLU(True))]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), *_block(nn.Conv2d(channels, channels, 3, bias=bias), norm, channels, None)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """(N, input_nc, H, W) in [-1, 1] -> (N, output_nc, H, W) in [-1, 1]; H, W multiples of 4."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance", dropout: float = 0.0, upsample: str = "convtranspose"):
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3),
                                   *_block(nn.Conv2d(input_nc, ngf, 7, bias=bias), norm, ngf, nn.ReLU(True))]
        ch = ngf
        for _ in range(2):                                          # d128, d256
            layers += _block(nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1, bias=bias), norm, 2 * ch, nn.ReLU(True))
            ch *= 2
        layers += [ResidualBlock(ch, norm, dropout) for _ in range(n_blocks)]
        for _ in range(2):                                          # u128, u64
            layers += _block(up(upsample, ch, ch // 2, 3, bias), norm, ch // 2, nn.ReLU(True))
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, output_nc, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def encoder_taps(G: ResnetGenerator) -> list[tuple[int, int]]:
    """Where CUT's PatchNCE reads G's encoder (Park et al., 2020, appendix): the input pixels, the
    outputs of the two down-sampling stages (d128, d256: after their ReLU), of the first residual
    block and of the fifth (the last, if G has fewer).  A list of (index into ``G.net`` after which
    to read, -1 for the input itself; channels there)."""
    layers, taps, blocks = list(G.net), [(-1, G.net[1].in_channels)], []
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Conv2d) and layer.stride == (2, 2):
            relu = next(j for j in range(i + 1, len(layers)) if isinstance(layers[j], nn.ReLU))
            taps.append((relu, layer.out_channels))
        elif isinstance(layer, ResidualBlock):
            blocks.append(i)
    channels = taps[-1][1]
    taps += [(blocks[0], channels), (blocks[min(4, len(blocks) - 1)], channels)]
    return taps


def encode(G: ResnetGenerator, x: torch.Tensor, taps: list[tuple[int, int]]) -> list[torch.Tensor]:
    """The features of ``x`` at ``taps`` (:func:`encoder_taps`): G's layers are run only as far as
    the last tap."""
    wanted = [i for i, _ in taps]
    feats = [x] if -1 in wanted else []
    for i, layer in enumerate(G.net[:max(wanted) + 1]):
        x = layer(x)
        if i in wanted:
            feats.append(x)
    return feats
