"""The pix2pix PatchGAN discriminator.

``n_layers`` strided 4x4 convs (64, 128, 256 channels for ndf 64), one
stride-1 4x4 conv (512), then a stride-1 4x4 conv to one logit per patch.
With n_layers=3 each logit sees a 70x70 patch and a 256x256 input gives a
30x30 map.  pix2pix feeds it the channel concatenation of (A, B).
``norm`` as for the generators (batch: BatchNorm with running statistics).
:class:`PixelDiscriminator` is the 1x1 variant; :class:`MultiscaleDiscriminator` runs N
PatchGANs on the input at 1, 1/2, 1/4 ... scale (pix2pixHD, Wang et al. 2018).  Every
discriminator here has ``features(x)``: the activations after each LeakyReLU and the logits,
for the feature-matching loss.  ``antialias=True`` blurs (3x3 binomial) before each strided
convolution (after Zhang, "Making convolutional networks shift-invariant again", 2019, in its
cheap form: low-pass, then the strided convolution).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .norm import conv_bias, norm_layer


class Blur(nn.Module):
    """3x3 binomial low-pass filter ([1 2 1] x [1 2 1] / 16), per channel, reflection-padded."""

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (k[:, None] * k[None, :] / 16).expand(channels, 1, 3, 3).clone(),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel.to(x.dtype), groups=x.shape[1])


def _features(net: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The activations after each LeakyReLU of ``net``, then its output (the logits)."""
    out = []
    for layer in net:
        x = layer(x)
        if isinstance(layer, nn.LeakyReLU):
            out.append(x)
    return out + [x]


class PatchDiscriminator(nn.Module):
    def __init__(self, input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                 antialias: bool = False):
        super().__init__()
        layers: list[nn.Module] = ([Blur(input_nc)] if antialias else []) + [nn.Conv2d(input_nc, ndf, 4, 2, 1),
                                                                              nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            if antialias and stride == 2:
                layers.append(Blur(ndf * prev))
            layers.append(nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=conv_bias(norm)))
            nl = norm_layer(norm, ndf * mult, stats="running")
            layers += ([nl] if nl is not None else []) + [nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, input_nc, H, W) -> (N, 1, H/8 - 2, W/8 - 2) logits (30x30 for 256x256)."""
        return self.net(x)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each LeakyReLU, then the logits."""
        return _features(self.net, x)


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

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return _features(self.net, x)


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs (:class:`PatchDiscriminator`, each its own weights); the k-th judges the
    input down-sampled k times by 3x3 average pooling, stride 2 (as pix2pixHD).  ``forward`` gives
    the list of their logit maps, finest first; ``features`` the list of their feature lists."""

    def __init__(self, input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                 num_d: int = 2, antialias: bool = False):
        super().__init__()
        self.scales = nn.ModuleList([PatchDiscriminator(input_nc, ndf, n_layers, norm, antialias)
                                     for _ in range(num_d)])

    def _inputs(self, x: torch.Tensor):
        for k, D in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            yield D, x

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [D(y) for D, y in self._inputs(x)]

    def features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        return [D.features(y) for D, y in self._inputs(x)]


def feature_matching(fake: list, real: list) -> torch.Tensor:
    """pix2pixHD's feature-matching loss: L1 between D's intermediate activations on the fake and
    the real input (the real ones taken as constants), summed over layers (the logits left out),
    averaged over scales.  ``fake``/``real``: ``features()`` of one discriminator (a list of
    tensors) or of a multi-scale one (a list of such lists)."""
    if fake and isinstance(fake[0], torch.Tensor):
        fake, real = [fake], [real]
    per_scale = [sum(F.l1_loss(f.float(), r.detach().float()) for f, r in zip(fs[:-1], rs[:-1]))
                 for fs, rs in zip(fake, real)]
    return sum(per_scale) / len(per_scale)


def receptive_field(n_layers: int = 3) -> int:
    """Receptive field of one output logit, in input pixels (70 for n_layers=3)."""
    strides = [2] * n_layers + [1, 1]        # every conv is 4x4
    rf, jump = 1, 1
    for s in strides:
        rf += 3 * jump
        jump *= s
    return rf
