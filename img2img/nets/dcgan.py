"""DCGAN (Radford et al., 2016): the all-convolutional generator and discriminator.

Generator: z (N, z_dim) -> ConvTranspose 4x4 from 1x1 to 4x4 (the projection to
4x4x(8*ngf)), then strided ConvTranspose 4x4 blocks, each with BatchNorm and
ReLU, doubling the size and halving the width down to ``ngf``; the last block
goes to ``out_ch`` channels with Tanh.  Discriminator: its mirror, strided
4x4 convolutions with LeakyReLU(0.2), BatchNorm on every layer but the first,
no pooling, and a final 4x4 convolution to one logit.

Width at resolution r (both networks): ``w * max(1, 32 // r)`` with w = ngf or
ndf, i.e. 8w at 4x4, 4w at 8x8, 2w at 16x16, w from 32x32 up.  Shapes for
``image_size=32, ngf=64, out_ch=1``::

    G: z 100 -> 512@4 -> 256@8 -> 128@16 -> 1@32 (tanh)
    D: 1@32 -> 128@16 -> 256@8 -> 512@4 -> 1 logit

Image size 32, 64 or 128 sets the number of blocks (3, 4 or 5).
"""
from __future__ import annotations

import torch
import torch.nn as nn

SIZES = (32, 64, 128)


def _widths(base: int, image_size: int) -> list[tuple[int, int]]:
    """(resolution, channels) of the hidden feature maps, from 4x4 up to image_size / 2."""
    if image_size not in SIZES:
        raise ValueError(f"DCGAN image size must be one of {', '.join(map(str, SIZES))}, got {image_size}")
    out, r = [], 4
    while r < image_size:
        out.append((r, base * max(1, 32 // r)))
        r *= 2
    return out


class DCGANGenerator(nn.Module):
    """(N, z_dim) or (N, z_dim, 1, 1) noise -> (N, out_ch, S, S) in [-1, 1]."""

    def __init__(self, z_dim: int = 100, out_ch: int = 3, ngf: int = 64, image_size: int = 64):
        super().__init__()
        widths = [c for _, c in _widths(ngf, image_size)]
        self.z_dim, self.image_size = z_dim, image_size
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, widths[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], out_ch, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(z.shape[0], self.z_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """(N, in_ch, S, S) -> (N,) logits.  ``batchnorm=False`` leaves BatchNorm out (for spectral
    normalisation, :func:`spectral_normalize`, which takes its place)."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, image_size: int = 64, batchnorm: bool = True):
        super().__init__()
        widths = [c for _, c in reversed(_widths(ndf, image_size))]   # at S/2, S/4, ..., 4
        layers: list[nn.Module] = [nn.Conv2d(in_ch, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(widths, widths[1:]):
            norm = nn.BatchNorm2d(c_out) if batchnorm else nn.Identity()
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), norm, nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def spectral_normalize(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al., 2018) of every convolution in ``module``: each
    weight is divided by its largest singular value, estimated by one power iteration per
    training forward pass.  Apply after the weights are initialised."""
    from torch.nn.utils.parametrizations import spectral_norm
    for name, m in list(module.named_modules()):
        if isinstance(m, nn.Conv2d):
            spectral_norm(m)
    return module
