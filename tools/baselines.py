"""Trivial baselines for held-out pairs, scored exactly as `img2img eval` scores a model.

    python tools/baselines.py PAIRS --train TRAIN_PAIRS [--direction AtoB|BtoA] [--size 256]

Prints mean L1 / PSNR / SSIM of
* ``identity``: the input itself as the output (what a model that does nothing scores);
* ``mean image``: the mean of the training targets (what the best blur scores: a model that
  cannot tell the inputs apart).
A model's figures mean something only next to these.  Both images are resized to ``--size``
(the model's size) and compared as RGB in [0, 1] with :func:`img2img.metrics.pair_metrics`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from img2img.color import to_float  # noqa: E402
from img2img.data.paired import PairedDataset  # noqa: E402
from img2img.metrics import pair_metrics  # noqa: E402
from img2img.translate import resize_rgb  # noqa: E402


def pairs(folder: str, direction: str, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input, target) RGB tensors (3, size, size) in [0, 1] of every pair under ``folder``."""
    ds = PairedDataset(folder, direction=direction, cache=False, train=False, load_size=size, crop_size=size,
                       flip=False)
    out = []
    for i in range(len(ds)):
        a, b = ds.raw(i)
        out.append((resize_rgb(to_float(a), (size, size)), resize_rgb(to_float(b), (size, size))))
    return out


def score(outputs, targets) -> dict[str, float]:
    per = [pair_metrics(o, t) for o, t in zip(outputs, targets)]
    return {k: round(float(np.mean([p[k] for p in per])), 4) for k in ("l1", "psnr", "ssim")}


def baseline_figures(held_out: str, train: str, direction: str = "AtoB", size: int = 256) -> dict[str, dict]:
    """{"identity": {l1, psnr, ssim}, "mean_image": {...}} on the pairs under ``held_out``."""
    held = pairs(held_out, direction, size)
    mean = torch.stack([t for _, t in pairs(train, direction, size)]).mean(0)
    targets = [t for _, t in held]
    return {"identity": score([i for i, _ in held], targets), "mean_image": score([mean] * len(held), targets)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", help="held-out pairs (AB files or A/ and B/)")
    ap.add_argument("--train", required=True, help="training pairs (for the mean target image)")
    ap.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"])
    ap.add_argument("--size", type=int, default=256, help="the model's size (default: 256)")
    args = ap.parse_args(argv)
    figures = baseline_figures(args.pairs, args.train, args.direction, args.size)
    rows = {"identity (output = input)": figures["identity"], "mean training target": figures["mean_image"]}
    print(f"held-out pairs in {args.pairs}, {args.direction}, at {args.size}x{args.size}:")
    for name, r in rows.items():
        print(f"  {name:<28} L1 {r['l1']:.4f}  PSNR {r['psnr']:.2f} dB  SSIM {r['ssim']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
