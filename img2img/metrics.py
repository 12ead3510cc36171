"""Image comparison figures, the one place they are computed: L1, PSNR, SSIM, texture.

* :func:`pair_metrics` -- L1, PSNR (dB, peak 1, capped at :data:`PSNR_CAP`) and SSIM (kornia,
  11x11 Gaussian window) of two RGB images in [0, 1]: what ``img2img eval``, validation while
  training and the run page report.
* :func:`texture` -- the periodic "quilt" of up-sampling layers: spectral power at the harmonics
  of 2-, 4- and 8-pixel periods relative to the power around them (about 1 for photos).
* :func:`psnr` -- one pair's PSNR; :func:`psnr_each` -- per image over two batches (the int8
  export's accuracy check).

Below the trainer and ``eval`` alike; imports nothing of img2img.
"""
from __future__ import annotations

import numpy as np
import torch

PSNR_CAP = 100.0
METRICS = ("l1", "psnr", "ssim", "texture")


def psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB (peak 1, kornia) of two images (C, H, W) in [0, 1]; an exact match (MSE at or
    below 1e-10) is :data:`PSNR_CAP`, so JSON stays finite."""
    from kornia.metrics import psnr as kornia_psnr
    o, t = output[None].float(), target[None].float()
    mse = float(torch.mean((o - t) ** 2))
    return PSNR_CAP if mse <= 10 ** (-PSNR_CAP / 10) else float(kornia_psnr(o, t, 1.0))


def psnr_each(a, b) -> np.ndarray:
    """Per-image :func:`psnr` of two (N, C, H, W) batches (arrays or tensors) in [0, 1]."""
    a, b = torch.as_tensor(np.asarray(a)), torch.as_tensor(np.asarray(b))
    return np.array([psnr(x, y) for x, y in zip(a, b)], dtype=np.float64)


def _periods(n: int) -> int:
    """The longest artefact period :func:`texture` looks at for a side of n pixels: 8, or 4 / 2 on
    small images (so that harmonics stay at least 8 frequency bins apart)."""
    return 8 if n >= 64 else 4 if n >= 32 else 2


def texture(image: torch.Tensor) -> float:
    """How strongly an image (C, H, W) or (H, W) in [0, 1] repeats with a period of 2, 4 or 8 pixels,
    the grid that stride-2 up-sampling layers leave (the "checkerboard" or "quilt").

    The mean-free gray image, Hann-windowed, gives a power spectrum P.  At each harmonic of an
    8-pixel period (frequencies (i·H/8, j·W/8), i, j in 0..7, not both 0: the 2- and 4-pixel periods
    are among them; 4 or 2 pixels on images under 64 or 32 pixels) the figure compares the mean of
    P over the 3x3 bins at the harmonic with its mean over the ring of bins 2 to 4 away.  The result
    is the mean of these ratios: about 1 for noise, a little under 1 for photographs (their spectra
    fall off), above 1 where such a grid is visible; an image under 16 pixels a side gives 1."""
    x = image.float()
    x = x.mean(0) if x.dim() == 3 else x
    H, W = x.shape
    if min(H, W) < 16:
        return 1.0
    x = x - x.mean()
    x = x * torch.outer(torch.hann_window(H, periodic=False, dtype=x.dtype),
                        torch.hann_window(W, periodic=False, dtype=x.dtype))
    P = torch.fft.fft2(x).abs().pow(2) + 1e-12
    ph, pw = _periods(H), _periods(W)
    d = torch.arange(-4, 5)
    ring = (d.abs()[:, None].maximum(d.abs()[None, :]) >= 2)
    core = (d.abs()[:, None].maximum(d.abs()[None, :]) <= 1)
    ratios = []
    for i in range(ph):
        for j in range(pw):
            if i == 0 and j == 0:
                continue
            cy, cx = round(i * H / ph), round(j * W / pw)
            patch = P[(cy + d)[:, None] % H, (cx + d)[None, :] % W]
            ratios.append(patch[core].mean() / patch[ring].mean())
    return float(torch.stack(ratios).mean())


def pair_metrics(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """L1, PSNR (dB, max value 1) and SSIM (11x11) of two RGB images (3, H, W) in [0, 1], and the
    output's :func:`texture`."""
    from kornia.metrics import ssim
    o, t = output[None].float(), target[None].float()
    return {"l1": float((o - t).abs().mean()), "psnr": psnr(output, target),
            "ssim": float(ssim(o, t, 11, max_val=1.0).mean()), "texture": texture(output)}


__all__ = ["METRICS", "PSNR_CAP", "pair_metrics", "psnr", "psnr_each", "texture"]
