"""Per-image operations on uint8 arrays (H, W, C): the pixels behind ``img2img data``.

Every function takes and returns ``numpy.uint8`` arrays of shape (H, W, 3)
(or (H, W) for the one-channel results) and touches no files, so they are
easy to test and to call from a notebook.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..color import gray_uint8

RESAMPLE = {"lanczos": Image.LANCZOS, "bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR,
            "nearest": Image.NEAREST}
WHITE = 255


def resize_square(img: np.ndarray, size: int, mode: str = "crop", resample: str = "lanczos") -> np.ndarray:
    """Scale ``img`` (H, W, C) to a ``size`` x ``size`` square.

    ``mode="crop"``: the shorter side becomes ``size`` and the centre is cut out.
    ``mode="pad"``: the longer side becomes ``size`` and the rest is padded with white.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if mode not in ("crop", "pad"):
        raise ValueError(f"mode must be 'crop' or 'pad', got {mode!r}")
    h, w = img.shape[:2]
    scale = size / (min(h, w) if mode == "crop" else max(h, w))
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if mode == "crop":
        nw, nh = max(nw, size), max(nh, size)
    else:
        nw, nh = min(nw, size), min(nh, size)
    im = Image.fromarray(_squeeze(img))
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), RESAMPLE[resample])
    arr = np.asarray(im)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    if mode == "crop":
        top, left = (nh - size) // 2, (nw - size) // 2
        return np.ascontiguousarray(arr[top:top + size, left:left + size])
    out = np.full((size, size, arr.shape[2]), WHITE, np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top:top + nh, left:left + nw] = arr
    return out


def grayscale(img: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) -> gray (H, W) with PIL's ITU-R 601-2 luma weights."""
    return gray_uint8(_squeeze(img))[:, :, 0]


def blank(img: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """A copy of ``img`` with a centred white rectangle ``fraction`` of its width and height."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    out = img.copy()
    h, w = img.shape[:2]
    bh, bw = round(h * fraction), round(w * fraction)
    top, left = (h - bh) // 2, (w - bw) // 2
    out[top:top + bh, left:left + bw] = WHITE
    return out


MAX_SIGMA = 50.0           # Gaussian blur: a 301x301 kernel; larger blurs leave no edges worth drawing
MAX_THICKNESS = 100        # line width in pixels


def edge_params_problem(low: float, high: float, sigma: float, thickness: int) -> str | None:
    """What is wrong with a set of Canny settings, or None (NaN and infinities are wrong too)."""
    numbers = (low, high, sigma)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in numbers):
        return f"edge settings must be finite numbers, got low={low}, high={high}, sigma={sigma}"
    if not 0.0 <= low <= high:
        return f"edge thresholds need 0 <= low <= high, got low={low}, high={high}"
    if not 0 < sigma <= MAX_SIGMA:
        return f"sigma must be positive and at most {MAX_SIGMA:g}, got {sigma}"
    if isinstance(thickness, bool) or not isinstance(thickness, int) or not 1 <= thickness <= MAX_THICKNESS:
        return f"thickness must be between 1 and {MAX_THICKNESS} pixels, got {thickness}"
    return None


EDGE_TILE = 1024           # edges() runs Canny on tiles of this side (plus a margin): bounded memory


def edges(img: np.ndarray, low: float = 0.2, high: float = 0.5, sigma: float = 1.5,
          thickness: int = 1, tile: int = EDGE_TILE) -> np.ndarray:
    """Canny edges of an RGB image (kornia) as black lines on white, uint8 (H, W).

    ``low``/``high``: hysteresis thresholds on kornia's unnormalised Sobel
    magnitude (a clean black/white step after the blur reaches about 2.6);
    higher thresholds keep fewer, stronger edges.  ``sigma``: Gaussian blur
    before the gradient (larger: smoother, fewer small edges).
    ``thickness``: line width in pixels (edges are dilated by a square).

    Memory is bounded whatever the image size: the local steps (blur, gradient,
    non-maximum suppression, thresholds) run on ``tile`` x ``tile`` tiles with a
    margin wider than their reach, and the hysteresis (weak edges kept where they
    connect to a strong one, 8-connected) is one labelling of the whole image's
    weak/strong map, which is what kornia's iterative hysteresis computes.  The
    result equals kornia's ``canny`` on the whole image, up to the odd pixel where
    float rounding in a tile decides a threshold or a tie.  (A 6000x4000 photo:
    see the README's reliability section for the memory measured.)
    """
    from scipy import ndimage

    problem = edge_params_problem(low, high, sigma, thickness)
    if problem:
        raise ValueError(problem)
    img = img[:, :, None] if img.ndim == 2 else img
    h, w = img.shape[:2]
    k = 2 * math.ceil(3 * sigma) + 1
    if h < k or w < k:          # kornia's reflect padding needs the image larger than the blur kernel
        classes = _canny_classes(img, low, high, sigma, k, pad_to=k)[:h, :w]
    else:
        margin = k // 2 + 3     # blur radius + 1 (gradient) + 1 (non-maximum suppression) + 1 spare
        classes = np.zeros((h, w), np.uint8)
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                ya, xa, yb, xb = max(0, y0 - margin), max(0, x0 - margin), min(h, y1 + margin), min(w, x1 + margin)
                c = _canny_classes(img[ya:yb, xa:xb], low, high, sigma, k)
                classes[y0:y1, x0:x1] = c[y0 - ya:y1 - ya, x0 - xa:x1 - xa]
    labels, n = ndimage.label(classes > 0, structure=np.ones((3, 3), bool))
    keep = np.zeros(n + 1, bool)
    keep[np.unique(labels[classes == 2])] = True
    keep[0] = False
    lines = keep[labels]
    del labels
    if thickness > 1:
        lines = ndimage.binary_dilation(lines, structure=np.ones((thickness, thickness), bool))
    return np.where(lines, 0, WHITE).astype(np.uint8)


def _canny_classes(img: np.ndarray, low: float, high: float, sigma: float, k: int,
                   pad_to: int = 0) -> np.ndarray:
    """kornia's Canny without hysteresis on uint8 (h, w, C): 0 none, 1 weak, 2 strong edge, uint8 (h, w)."""
    import kornia
    import torch
    x = torch.from_numpy(np.array(img, dtype=np.float32, copy=True)).permute(2, 0, 1)[None] / 255.0
    if x.shape[1] == 1:
        x = x.expand(1, 3, *x.shape[2:])
    h, w = x.shape[-2:]
    if pad_to:
        x = torch.nn.functional.pad(x, (0, max(0, pad_to - w), 0, max(0, pad_to - h)), mode="replicate")
    with torch.no_grad():
        _, e = kornia.filters.canny(x, low, high, kernel_size=k, sigma=(sigma, sigma), hysteresis=False)
    return (e[0, 0] * 2).round().to(torch.uint8).numpy()


def to_rgb3(img: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1) -> (H, W, 3); (H, W, 3) unchanged."""
    if img.ndim == 2:
        img = img[:, :, None]
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def side_by_side(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The pix2pix AB image: ``a`` on the left, ``b`` on the right (same height)."""
    return np.concatenate([to_rgb3(a), to_rgb3(b)], axis=1)


def split_halves(ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An AB image -> (A, B); the width must be even."""
    w = ab.shape[1]
    if w % 2:
        raise ValueError(f"AB image width {w} is odd")
    return ab[:, : w // 2], ab[:, w // 2:]


def _squeeze(img: np.ndarray) -> np.ndarray:
    return img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img
