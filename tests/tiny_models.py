"""Tiny generators saved as real checkpoints, for the translate / eval / export tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from img2img.checkpoint import save_checkpoint
from img2img import families
from img2img.families import make_config
from img2img.nets import init_weights


def make_checkpoint(path: Path, seed: int = 0, **settings) -> Path:
    """An untrained (randomly initialised) generator + its config, saved like model.pt.

    pix2pix by default: 32x32, ngf 8 (depth 5, so 2^depth = 32).
    """
    source = families.get(settings.get("kind", "pix2pix")).data       # pairs, unpaired or images
    base = dict(images="unused", ngf=8, ndf=8) if source == "images" else \
        {source: "unused", "crop_size": 32, "load_size": 36, "ngf": 8, "ndf": 8}
    cfg = make_config(**{**base, **settings})
    torch.manual_seed(seed)
    G = init_weights(families.get(cfg.model.kind).build_generator(cfg))
    # random BatchNorm affine parameters, so per-sample normalisation matters for the output
    for name, p in G.named_parameters():
        if p.dim() == 1:
            with torch.no_grad():
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.uniform_(-0.3, 0.3)
    save_checkpoint(path, cfg.to_dict(), {"G": G.state_dict(), "step": 0})
    return Path(path)


def write_images(folder: Path, sizes, seed: int = 0, exts=("png", "jpg", "bmp")) -> list[Path]:
    """Photo-like RGB images of the given (w, h) sizes, cycling through formats; returns their paths."""
    rng = np.random.default_rng(seed)
    out = []
    for i, (w, h) in enumerate(sizes):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.stack([60 + 120 * xx / w, 80 + 100 * yy / h, 150 - 60 * xx / w], -1)
        img += rng.normal(0, 12, img.shape)
        x0, y0 = rng.integers(0, max(1, w // 2)), rng.integers(0, max(1, h // 2))
        img[y0:y0 + h // 3, x0:x0 + w // 3] = rng.integers(20, 235, 3)
        sub = folder / ("nested" if i % 3 == 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        p = sub / f"img{i}.{exts[i % len(exts)]}"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(p, **({"quality": 95} if p.suffix == ".jpg" else {}))
        out.append(p)
    return out


def read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)
