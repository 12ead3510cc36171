#!/usr/bin/env python
"""Compare GAN objectives: overlay the logged quantities of several runs (PIL only, no matplotlib).

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

from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from img2img.report import PALETTE, read_log, save_png, smooth  # noqa: E402

G_LOSS = {"minimax": "log(1 - D(G(z)))", "nonsat": "-log D(G(z))", "lsgan": "(D(G(z)) - 1)^2 / 2",
          "hinge": "-D(G(z))", "wgan-gp": "-D(G(z))"}


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], float(r[key])) for r in rows if key in r and math.isfinite(float(r[key]))]
    return [p[0] for p in pts], [p[1] for p in pts]


def draw_panel(draw, font, box, title, lines, max_step, unit_range=False):
    """lines: [(label, color, steps, values)] on one shared axis."""
    x0, y0, x1, y1 = box
    lines = [ln for ln in lines if ln[3]]
    if not lines:
        return
    lo, hi = min(min(v) for *_, v in lines), max(max(v) for *_, v in lines)
    if unit_range:
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.05
    lo, hi = (lo, hi) if unit_range else (lo - pad, hi + pad)
    sx = (x1 - x0) / max(1, max_step)

    def xy(s, v):
        return x0 + s * sx, y1 - (min(max(v, lo), hi) - lo) / (hi - lo) * (y1 - y0)

    draw.text((x0, y0 - 16), title, fill="black", font=font)
    draw.rectangle([x0, y0, x1, y1], outline=(180, 180, 180))
    for t in range(5):
        v = lo + (hi - lo) * t / 4
        _, y = xy(0, v)
        draw.line([x0, y, x1, y], fill=(235, 235, 235))
        draw.text((x0 - 52, y - 6), f"{v:.3g}", fill=(90, 90, 90), font=font)
        x, _ = xy(max_step * t / 4, lo)
        draw.text((x - 10, y1 + 4), f"{int(round(max_step * t / 4))}", fill=(90, 90, 90), font=font)
    draw.text((x1 - 30, y1 + 16), "step", fill=(90, 90, 90), font=font)
    for i, (label, color, steps, vals) in enumerate(lines):
        pts = [xy(s, v) for s, v in zip(steps, vals)]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
        draw.text((x0 + 8, y0 + 6 + 13 * i), f"{label}: last {vals[-1]:.3g}", fill=color, font=font)


def last_grid(run: Path) -> Path | None:
    grids = sorted((run / "samples").glob("*.png"))
    return grids[-1] if grids else None


def plot(runs: list[tuple[str, Path, list[dict], str]], out: Path, title: str, samples: bool = True,
         pw: int = 520, ph: int = 200) -> None:
    font = ImageFont.load_default()
    max_step = max(r["step"] for _, _, rows, _ in runs for r in rows)
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(runs))]

    def sm(rows, key):
        steps, vals = series(rows, key)
        return steps, smooth(vals, max(1, len(vals) // 80))

    panels = [("D(G(z)): the probability D gives the fakes (smoothed)",
               [(lab, c, *sm(rows, "D_fake")) for (lab, _, rows, _), c in zip(runs, colors)], True),
              ("D(x) on real images (smoothed)",
               [(lab, c, *sm(rows, "D_real")) for (lab, _, rows, _), c in zip(runs, colors)], True)]
    for (lab, _, rows, obj), c in zip(runs, colors):
        panels.append((f"{lab}: generator loss {G_LOSS.get(obj, 'G_GAN')}", [(lab, c, *sm(rows, "G_GAN"))], False))
    thumbs = []
    if samples:
        for lab, run, _, _ in runs:
            g = last_grid(run)
            if g is not None:
                im = Image.open(g).convert("RGB")
                im.thumbnail((pw // 2 - 20, pw // 2 - 20))
                thumbs.append((f"{lab}: samples at step {max(r['step'] for r in _rows(runs, lab))}", im))
    thumb_h = (max(im.height for _, im in thumbs) + 30) if thumbs else 0
    img = Image.new("RGB", (pw, 30 + ph * len(panels) + thumb_h), "white")
    draw = ImageDraw.Draw(img)
    draw.text((8, 8), title, fill="black", font=font)
    for n, (ptitle, lines, unit) in enumerate(panels):
        oy = 30 + n * ph
        draw_panel(draw, font, (60, oy + 22, pw - 14, oy + ph - 32), ptitle, lines, max_step, unit)
    oy = 30 + ph * len(panels)
    for i, (label, im) in enumerate(thumbs):
        x = 10 + i * (pw // 2)
        draw.text((x, oy + 4), label, fill=colors[i], font=font)
        img.paste(im, (x, oy + 22))
    save_png(img, out)


def _rows(runs, label):
    return next(rows for lab, _, rows, _ in runs if lab == label)


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
