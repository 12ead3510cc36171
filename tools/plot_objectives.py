#!/usr/bin/env python
"""Compare GAN objectives: overlay the logged quantities of several runs (matplotlib).

Made for the GAN paper's point that the minimax generator loss saturates
early while the non-saturating one keeps learning:

    img2img train --images mnist.gz --model dcgan --size 32 --ngf 16 --ndf 16 --batch-size 32 \\
        --objective minimax --max-steps 1500 --out runs/dc_minimax
    img2img train ... --objective nonsat --max-steps 1500 --out runs/dc_nonsat
    python tools/plot_objectives.py runs/dc_minimax runs/dc_nonsat --out docs/minimax_vs_nonsat.png

Panels: D(G(z)) (``D_fake``) and D(x) (``D_real``) for all runs on one axis,
then each run's own generator loss ``G_GAN`` on its own axis (minimax's
log(1 - D(G(z))) is <= 0, the non-saturating -log D(G(z)) >= 0), and,
unless --no-samples, each run's last sample grid.  Runs are labelled by their
objective (or --labels).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from img2img.report import PALETTE, new_figure, read_log, save_figure, smooth  # noqa: E402

G_LOSS = {"minimax": "log(1 - D(G(z)))", "nonsat": "-log D(G(z))", "lsgan": "(D(G(z)) - 1)^2 / 2",
          "hinge": "-D(G(z))", "wgan-gp": "-D(G(z))"}


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], float(r[key])) for r in rows if key in r and math.isfinite(float(r[key]))]
    return [p[0] for p in pts], [p[1] for p in pts]


def last_grid(run: Path) -> Path | None:
    grids = sorted((run / "samples").glob("*.png"))
    return grids[-1] if grids else None


def plot(runs: list[tuple[str, Path, list[dict], str]], out: Path, title: str, samples: bool = True) -> None:
    """runs: (label, run folder, log rows, objective).  Panels as described in the module docs."""
    def sm(rows, key):
        steps, vals = series(rows, key)
        return steps, smooth(vals, max(1, len(vals) // 80))

    grids = [(lab, last_grid(run), rows) for lab, run, rows, _ in runs] if samples else []
    grids = [(lab, g, rows) for lab, g, rows in grids if g is not None]
    panels = 2 + len(runs)
    fig = new_figure(8, 2.6 * panels + (3.6 if grids else 0) + 0.6)
    gs = fig.add_gridspec(panels + (1 if grids else 0), max(1, len(grids)),
                          height_ratios=[1] * panels + ([1.4] if grids else []), hspace=0.75,
                          top=1 - 0.9 / (2.6 * panels + (3.6 if grids else 0) + 0.6), bottom=0.04)
    fig.suptitle(title, fontsize=12)
    for n, (key, what) in enumerate((("D_fake", "D(G(z)): the probability D gives the fakes"),
                                     ("D_real", "D(x): the probability D gives real images"))):
        ax = fig.add_subplot(gs[n, :])
        for i, (lab, _, rows, _) in enumerate(runs):
            ax.plot(*sm(rows, key), color=PALETTE[i % len(PALETTE)], label=lab)
        ax.set(title=f"{what} (smoothed)", xlabel="step", ylabel="probability", ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for i, (lab, _, rows, obj) in enumerate(runs):
        ax = fig.add_subplot(gs[2 + i, :])
        ax.plot(*series(rows, "G_GAN"), color=PALETTE[i % len(PALETTE)], alpha=0.3, linewidth=0.8, label="raw")
        ax.plot(*sm(rows, "G_GAN"), color=PALETTE[i % len(PALETTE)], label="smoothed")
        ax.set(title=f"{lab}: generator loss {G_LOSS.get(obj, 'G_GAN')}", xlabel="step", ylabel="G loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for i, (lab, g, rows) in enumerate(grids):
        ax = fig.add_subplot(gs[panels, i])
        with Image.open(g) as im:
            ax.imshow(np.asarray(im.convert("RGB")))
        ax.set_title(f"{lab}: samples at step {max(r['step'] for r in rows)}", fontsize=9,
                     color=PALETTE[i % len(PALETTE)])
        ax.axis("off")
    save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders (each with log.jsonl and config.json)")
    ap.add_argument("--out", required=True, help="PNG to write")
    ap.add_argument("--labels", nargs="+", help="one label per run (default: its objective)")
    ap.add_argument("--title", default="GAN objectives compared")
    ap.add_argument("--no-samples", action="store_true", help="leave out the runs' last sample grids")
    args = ap.parse_args(argv)
    if args.labels and len(args.labels) != len(args.runs):
        ap.error("give one --labels entry per run")
    runs = []
    for i, r in enumerate(args.runs):
        run = Path(r)
        rows = read_log(run / "log.jsonl")
        if not rows:
            ap.error(f"{run}: no log.jsonl rows")
        cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else {}
        obj = cfg.get("train", {}).get("objective", "")
        runs.append((args.labels[i] if args.labels else (obj or run.name), run, rows, obj))
    plot(runs, Path(args.out), args.title, samples=not args.no_samples)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
