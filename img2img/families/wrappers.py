"""Generators as self-contained RGB functions: what ``translate`` runs and ``export`` writes to ONNX.

* :class:`RGBGenerator` -- an image-to-image generator, RGB in [0, 1] -> RGB in [0, 1],
  with the color handling of its run inside (gray input, Lab, colorization L -> ab).
* :class:`NoiseGenerator` -- a generator from noise, z (N, z_dim) -> RGB in [0, 1].
* :class:`PadToMultiple` -- an image function made to take any H and W (what ``export`` writes
  for image-to-image models).

Families build them (``Family.inference_module``); nothing here knows a family's name.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import color as colorlib
from ..config import RunConfig


class RGBGenerator(nn.Module):
    """An image-to-image generator as a function: RGB in [0, 1] -> RGB in [0, 1].

    Applies what the model's config says about its input and output: gray
    conversion (1-channel models), RGB <-> scaled Lab (``color="lab"``), and
    for colorization L -> ab recombined with the input's L.
    (N, 3, H, W) float32 -> (N, 3, H, W); H and W as the generator needs them
    (multiples of ``Family.size_multiple``).
    """

    def __init__(self, G: nn.Module, cfg: RunConfig, input_nc: int | None = None):
        super().__init__()
        self.G = G
        self.colorization = bool(cfg.data.colorization)
        self.color = cfg.data.color
        self.gray_in = (cfg.model.input_nc if input_nc is None else input_nc) == 1 and not self.colorization

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if self.colorization:
            L = colorlib.rgb_to_lab_net(rgb)[:, :1]
            return colorlib.merge_l_ab(L, self.G(L))
        x = colorlib.rgb_to_gray(rgb) if self.gray_in else rgb
        out = colorlib.decode(self.G(colorlib.encode(x, self.color)), self.color)
        return out.expand(-1, 3, -1, -1) if out.shape[1] == 1 else out


class NoiseGenerator(nn.Module):
    """A generator from noise: z (N, z_dim) -> RGB (N, 3, H, W) in [0, 1].

    ``low`` is the bottom of G's output range: -1 for tanh outputs, 0 for sigmoid ones.
    """

    def __init__(self, G: nn.Module, cfg: RunConfig, low: float = -1.0):
        super().__init__()
        self.G = G
        self.low = low
        self.color = cfg.data.color

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.G(z)
        if self.low != -1.0:
            x = (x - self.low) * (2.0 / (1.0 - self.low)) - 1.0
        out = colorlib.decode(x, self.color)
        return out.expand(-1, 3, -1, -1) if out.shape[1] == 1 else out


class PadToMultiple(nn.Module):
    """Any-size wrapper: (N, 3, H, W) -> (N, 3, H, W) for every H, W.

    Pads the bottom and right edges (edge pixels repeated) to multiples of
    ``multiple``, runs ``inner`` and crops its output back: the ``pad`` policy
    of :func:`img2img.translate.prepare_input` / :meth:`Translator.finish`,
    as one function (and so as part of an exported graph).  A no-op on sizes
    that are multiples already.
    """

    def __init__(self, inner: nn.Module, multiple: int):
        super().__init__()
        self.inner, self.multiple = inner, multiple

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        h, w = rgb.shape[-2], rgb.shape[-1]
        return self.inner(pad_to_multiple(rgb, self.multiple))[:, :, :h, :w]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """(N, C, H, W) -> padded at the bottom and right, edge pixels repeated, to multiples of
    ``multiple``: the ``pad`` policy, the one place it is written (translate's torch path and
    the exported graph).  No branch on the size, so it traces with symbolic shapes."""
    h, w, m = x.shape[-2], x.shape[-1], multiple
    return torch.nn.functional.pad(x, (0, (m - w % m) % m, 0, (m - h % m) % m), mode="replicate")


def set_dropout(module: nn.Module, on: bool) -> nn.Module:
    """Dropout layers in training mode (the paper's test-time noise) or eval mode; nothing else changes."""
    for m in module.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.train(on)
    return module
