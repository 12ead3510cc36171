"""The pix2pix training step under several speed settings, interleaved in one process.

    python tools/step_variants.py [--pairs DIR] [--steps 12] [--variants default no-matmul channels-last bf16]

Each variant is a full ``Trainer`` with the defaults (U-Net 256 + 70x70 PatchGAN, batch 1) and one
setting changed; their steps run in turn (variant 1 step, variant 2 step, ...) so that a change of
load hits them alike.  Prints the median seconds per step of each, and its ratio to ``default``,
with the CPU and the capability torch reports.  The first two steps of each are warm-up (the
kernel choice of ``nets/smallconv.py`` is measured there when its cache is empty).

Variants: default (as shipped), no-matmul (--no-cpu-matmul), channels-last (--channels-last),
bf16 (--amp bf16), compile (--compile).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

VARIANTS = {"default": {}, "no-matmul": {"cpu_matmul": False}, "channels-last": {"channels_last": True},
            "bf16": {"amp": "bf16"}, "compile": {"compile": True},
            "bf16-no-matmul": {"amp": "bf16", "cpu_matmul": False}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, help="AB pairs (default: 8 made-up 512x256 pairs)")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["default", "no-matmul"])
    a = ap.parse_args(argv)
    import machine
    from bench import make_pairs
    from img2img.data import collate
    from img2img.families import make_config
    from img2img.gan.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        pairs = a.pairs or make_pairs(Path(tmp) / "pairs", 8)
        trainers = {}
        for v in a.variants:
            trainers[v] = Trainer(make_config(pairs=str(pairs), out=str(Path(tmp) / v), progress=False, device="cpu",
                                              **VARIANTS[v]))
        tr0 = trainers[a.variants[0]]
        batches = []
        for i in range(4):
            b = collate([tr0.dataset[i % len(tr0.dataset)]])
            b.pop("errors")
            batches.append(b)
        times = {v: [] for v in a.variants}
        for i in range(a.steps + 2):
            for v, tr in trainers.items():
                b = tr._to_device(dict(batches[i % 4]))
                t = time.perf_counter()
                tr.train_step(b)
                if i >= 2:
                    times[v].append(time.perf_counter() - t)
    print(f"{machine.describe()}; pix2pix step 256x256 batch 1, median of {a.steps}")
    base = statistics.median(times[a.variants[0]])
    for v in a.variants:
        m = statistics.median(times[v])
        print(f"  {v:16s} {m:.3f} s/step  {base / m:.2f}x {a.variants[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
