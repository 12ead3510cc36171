"""The decoders' 2x up-sampling step, three ways (``--upsample``).

* ``convtranspose`` -- a strided transposed convolution (the pix2pix and CycleGAN papers; 4x4 in
  the U-Net, 3x3 in the ResNet generator).  Where its kernel does not divide evenly by the stride,
  neighbouring output pixels get different numbers of taps: the "checkerboard" of Odena et al.,
  "Deconvolution and checkerboard artifacts" (Distill, 2016).
* ``resize-conv`` -- nearest-neighbour 2x resize, then a 3x3 convolution (Odena et al.'s fix):
  every output pixel sees the same taps.
* ``pixelshuffle`` -- a 3x3 convolution to 4x the channels, then a sub-pixel shuffle (Shi et al.,
  2016), initialised by ICNR (Aitken et al., 2017) so the four phases start identical.

:func:`up` builds one; all keep (N, C, H, W) -> (N, out, 2H, 2W).
"""
from __future__ import annotations

import torch
import torch.nn as nn

UPSAMPLING = ("convtranspose", "resize-conv", "pixelshuffle")


class ResizeConv(nn.Sequential):
    """Nearest 2x, then a 3x3 convolution (zero padding 1)."""

    def __init__(self, in_c: int, out_c: int, bias: bool = True):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_c, out_c, 3, 1, 1, bias=bias))


class PixelShuffleUp(nn.Sequential):
    """A 3x3 convolution to 4·out channels, then PixelShuffle(2)."""

    def __init__(self, in_c: int, out_c: int, bias: bool = True):
        super().__init__(nn.Conv2d(in_c, 4 * out_c, 3, 1, 1, bias=bias), nn.PixelShuffle(2))

    @torch.no_grad()
    def icnr_(self, std: float = 0.02) -> None:
        """ICNR: the four sub-pixel phases of each output channel get the same random kernel (and
        bias), so a constant input gives a constant output."""
        conv = self[0]
        out_c = conv.out_channels // 4
        base = torch.randn(out_c, *conv.weight.shape[1:]) * std
        conv.weight.copy_(base.repeat_interleave(4, 0))
        if conv.bias is not None:
            conv.bias.zero_()


def up(mode: str, in_c: int, out_c: int, kernel: int, bias: bool = True) -> nn.Module:
    """One 2x up-sampling layer; ``kernel`` is the transposed convolution's (4: the U-Net, padding 1;
    3: the ResNet generator, padding 1 and output padding 1)."""
    if mode == "convtranspose":
        if kernel == 4:
            return nn.ConvTranspose2d(in_c, out_c, 4, 2, 1, bias=bias)
        return nn.ConvTranspose2d(in_c, out_c, 3, 2, 1, output_padding=1, bias=bias)
    if mode == "resize-conv":
        return ResizeConv(in_c, out_c, bias)
    if mode == "pixelshuffle":
        return PixelShuffleUp(in_c, out_c, bias)
    raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {mode!r}")
