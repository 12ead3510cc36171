"""Image comparison figures, the one place they are computed: L1, PSNR, SSIM.

* :func:`pair_metrics` -- L1, PSNR (dB, peak 1, capped at :data:`PSNR_CAP`) and SSIM (kornia,
  11x11 Gaussian window) of two RGB images in [0, 1]: what ``img2img eval``, validation while
  training and the run page report.
* :func:`psnr` -- one pair's PSNR; :func:`psnr_each` -- per image over two batches (the int8
  export's accuracy check).

Below the trainer and ``eval`` alike; imports nothing of img2img.
"""
from __future__ import annotations

import numpy as np
import torch

PSNR_CAP = 100.0
METRICS = ("l1", "psnr", "ssim")


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


def pair_metrics(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """L1, PSNR (dB, max value 1) and SSIM (11x11) of two RGB images (3, H, W) in [0, 1]."""
    from kornia.metrics import ssim
    o, t = output[None].float(), target[None].float()
    return {"l1": float((o - t).abs().mean()), "psnr": psnr(output, target),
            "ssim": float(ssim(o, t, 11, max_val=1.0).mean())}


__all__ = ["METRICS", "PSNR_CAP", "pair_metrics", "psnr", "psnr_each"]
