"""Color spaces as the networks see them: everything in [-1, 1].

* RGB: ``x * 2 - 1`` for x in [0, 1].
* Lab (kornia, D65): ``L / 50 - 1`` and ``ab / 110``, as pix2pix-tensorflow
  does, so L and ab land in about [-1, 1].
* Colorization: A is the scaled L channel (1 channel), B the scaled ab
  channels (2 channels); outputs are recombined with the input L.

The color functions take (C, H, W) or (N, C, H, W) float tensors;
:func:`to_uint8` and :func:`to_float` convert between them and 8-bit arrays.
"""
from __future__ import annotations

import numpy as np
import torch
from kornia.color import lab_to_rgb, rgb_to_lab


def rgb_to_net(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> [-1, 1]."""
    return rgb * 2.0 - 1.0


def net_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> RGB (or gray) in [0, 1], clamped."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


def gray_uint8(arr: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> gray (H, W, 1) (a gray (H, W, 1) array is returned as it is): ITU-R
    601-2 luma in PIL's integer arithmetic, so equal to ``Image.convert("L")`` for every colour.
    The one gray conversion of 8-bit images (loader, data sets, data tools); tensors:
    :func:`rgb_to_gray`."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        return arr
    a = arr.astype(np.uint32)
    g = (a[..., 0] * 19595 + a[..., 1] * 38470 + a[..., 2] * 7471 + 0x8000) >> 16
    return g.astype(np.uint8)[:, :, None]


def rgb_to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """RGB (..., 3, H, W) -> gray (..., 1, H, W) with ITU-R 601-2 luma weights (as PIL and :func:`gray_uint8`)."""
    return rgb[..., 0:1, :, :] * 0.299 + rgb[..., 1:2, :, :] * 0.587 + rgb[..., 2:3, :, :] * 0.114


def rgb_to_lab_net(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1], (..., 3, H, W) -> scaled Lab (L/50-1, a/110, b/110)."""
    lab = rgb_to_lab(rgb)
    L, ab = lab[..., :1, :, :], lab[..., 1:, :, :]
    return torch.cat([L / 50.0 - 1.0, ab / 110.0], dim=-3)


def lab_net_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Scaled Lab (..., 3, H, W) -> RGB in [0, 1] (clamped; out-of-gamut colors are clipped)."""
    L = (x[..., :1, :, :].clamp(-1.0, 1.0) + 1.0) * 50.0
    ab = x[..., 1:, :, :] * 110.0
    return lab_to_rgb(torch.cat([L, ab], dim=-3), clip=True).clamp(0.0, 1.0)


def split_l_ab(lab_net: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled Lab -> (L (…,1,H,W), ab (…,2,H,W))."""
    return lab_net[..., :1, :, :], lab_net[..., 1:, :, :]


def merge_l_ab(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(scaled L, scaled ab) -> RGB in [0, 1]."""
    return lab_net_to_rgb(torch.cat([L, ab], dim=-3))


def encode(rgb: torch.Tensor, color: str) -> torch.Tensor:
    """RGB (or gray, 1 channel) in [0, 1] -> the network's [-1, 1] space for ``color``."""
    if color == "lab":
        return rgb_to_lab_net(rgb)
    return rgb_to_net(rgb)


def decode(x: torch.Tensor, color: str) -> torch.Tensor:
    """The network's [-1, 1] space -> RGB (or gray) in [0, 1]."""
    if color == "lab" and x.shape[-3] == 3:
        return lab_net_to_rgb(x)
    return net_to_rgb(x)


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (H, W) float in [0, 1] -> uint8 (H, W, 3) or (H, W)."""
    x = rgb.detach().float().clamp(0, 1).mul_(255).round_()      # one float copy, then in place (big images)
    x = x.to(torch.uint8).cpu()
    if x.dim() == 3:
        x = x.permute(1, 2, 0)
    return x.numpy()


def to_float(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float (C, H, W) in [0, 1]."""
    return torch.from_numpy(np.require(arr, requirements=["C", "W"])).permute(2, 0, 1).float().div_(255.0)
