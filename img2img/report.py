"""Pictures of a run: sample grids (PIL) and the loss plot (matplotlib, Agg: no display needed).

log.jsonl is the source of truth; :func:`loss_plot` draws from its rows.  A row holds either
one step's losses (``step``, ``epoch``, ``lr``, ``time`` and the losses) or one validation pass
(``step``, ``val_l1``, ``val_psnr``, ``val_ssim``, ...).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .color import to_uint8
from .files import atomic_path

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
NOT_LOSSES = ("step", "epoch", "lr", "time", "skipped")   # skipped: bad files so far
PROBABILITIES = ("D_real", "D_fake")          # one shared panel: D's mean probability on real and generated inputs
VAL_PANELS = (("l1", "L1 (RGB in [0, 1])", "lower is better"), ("psnr", "PSNR (dB)", "higher is better"),
              ("ssim", "SSIM", "higher is better"))
MAX_POINTS = 20_000                           # raw curves longer than this are drawn every k-th step


def save_png(img: Image.Image, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_rows_grid(rows: list[torch.Tensor], path: str | Path) -> torch.Tensor:
    """Sample grid: one row per example, one column per tensor in ``rows``; returns the grid (3, H, W).

    pix2pix passes [inputs, outputs, targets], each (N, 3, H, W) in [0, 1], giving
    rows of input | output | target.
    """
    from torchvision.utils import make_grid
    n = rows[0].shape[0]
    tiles = torch.stack([r[i] for i in range(n) for r in rows])
    grid = make_grid(tiles.float().cpu(), nrow=len(rows), padding=2, pad_value=1.0)
    save_png(Image.fromarray(to_uint8(grid)), path)
    return grid


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> one PNG grid (about square); returns the grid (3, H, W)."""
    from torchvision.utils import make_grid
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    grid = make_grid(images.float().cpu(), nrow=nrow, padding=2, pad_value=1.0)
    save_png(Image.fromarray(to_uint8(grid)), path)
    return grid


def read_log(path: str | Path) -> list[dict]:
    rows = []
    p = Path(path)
    if not p.exists():
        return rows
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue                      # a line cut by a kill: ignore it
    return rows


def smooth(values: list[float], window: int) -> list[float]:
    if window <= 1 or len(values) < 3:
        return values
    c = np.cumsum(np.insert(np.asarray(values, dtype=np.float64), 0, 0.0))
    out = []
    for i in range(len(values)):
        lo = max(0, i - window + 1)
        out.append((c[i + 1] - c[lo]) / (i + 1 - lo))
    return out


def loss_rows(rows: list[dict]) -> list[dict]:
    """The rows of training steps (not validation passes)."""
    return [r for r in rows if not any(k.startswith("val_") for k in r)]


def val_rows(rows: list[dict]) -> list[dict]:
    """The rows of validation passes, in step order."""
    return [r for r in rows if "val_l1" in r]


def val_labels(rows: list[dict]) -> list[str]:
    """The labels of per-set validation figures (``val_LABEL_l1``: CycleGAN's ``A``/``B`` cycles or
    ``AtoB``/``BtoA`` pairs), in order of appearance."""
    found: dict[str, None] = {}
    for r in val_rows(rows):
        for k in r:
            if k.startswith("val_") and k.endswith("_l1") and k != "val_l1":
                found[k[4:-3]] = None
    return list(found)


def best_row(rows: list[dict], by: str) -> dict | None:
    """The validation row with the best ``val_BY`` (lowest L1, highest PSNR / SSIM); the earliest on ties."""
    from .config import VAL_METRICS
    vals = [r for r in val_rows(rows) if isinstance(r.get(f"val_{by}"), (int, float))]
    if not vals:
        return None
    sign = 1.0 if VAL_METRICS[by] == "min" else -1.0
    return min(vals, key=lambda r: (sign * r[f"val_{by}"], r["step"]))


def new_figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas (no pyplot, no display, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["step"], float(r[key])) for r in rows if isinstance(r.get(key), (int, float))
           and math.isfinite(float(r[key]))]
    if not pts:
        return np.zeros(0), np.zeros(0)
    a = np.asarray(pts, dtype=np.float64)
    return a[:, 0], a[:, 1]


def _draw_loss(ax, steps: np.ndarray, values: np.ndarray, color: str, label: str, legend: bool = True) -> None:
    """Raw values (light) and their moving mean (dark) on ``ax``; y range without the outer 1% of spikes."""
    window = max(1, len(values) // 50)
    every = max(1, math.ceil(len(values) / MAX_POINTS))
    sm = np.asarray(smooth(list(values), window))
    if window > 1:                       # (with fewer than 100 steps the curve is the raw values alone)
        raw_label = f"{label} raw" + (f" (every {every}th step)" if every > 1 else "")
        ax.plot(steps[::every], values[::every], color=color, alpha=0.3, linewidth=0.8, label=raw_label)
    ax.plot(steps, sm, color=color, linewidth=1.8,
            label=f"{label} smoothed (mean of {window} steps)" if window > 1 else f"{label} (every step)")
    lo, hi = np.percentile(values, 1), np.percentile(values, 99)
    lo, hi = min(lo, sm.min()), max(hi, sm.max())
    pad = (hi - lo) * 0.05 or 0.5
    ax.set_ylim(lo - pad, hi + pad)
    if legend:
        ax.legend(loc="best", fontsize=8, framealpha=0.8)


def loss_plot(rows: list[dict], path: str | Path, keys: list[str] | None = None, title: str = "losses",
              axes: dict[str, tuple[str, float | None, str]] | None = None, validation: str = "",
              best_by: str | None = None) -> bool:
    """The run's plot, drawn from log.jsonl rows: one panel per loss against the step (raw and
    smoothed, with a legend), D(real) and D(fake) together, then a row of validation panels
    (L1, PSNR, SSIM; the best pass of ``best_by`` starred) when the log holds validation passes.

    ``axes`` (from the model family) labels each loss and may add a second y axis showing the
    value times a factor (pix2pix: G_L1 = λ·L1 also as L1 on eval's [0, 1] scale).
    ``validation`` says what the validation figures compare.  Returns False when there is
    nothing to draw.
    """
    train_rows, vrows = loss_rows(rows), val_rows(rows)
    if not train_rows and not vrows:
        return False
    axes = axes or {}
    if keys is None:
        keys = sorted({k for r in train_rows for k, v in r.items() if k not in NOT_LOSSES
                       and isinstance(v, (int, float))})
    keys = [k for k in keys if any(k in r for r in train_rows)]
    panels = [k for k in keys if k not in PROBABILITIES]
    probs = [k for k in PROBABILITIES if k in keys]
    if probs:
        panels.append("probabilities")
    cols = 2
    loss_grid = math.ceil(len(panels) / cols)
    val_line = 1 if vrows else 0
    # fixed margins, in inches (a layout engine would cost more than the drawing itself)
    row_h, head, gap = 2.6, 0.6, 0.75
    val_h = (row_h + gap + (0.5 if validation else 0.0)) if vrows else 0.0
    height = head + loss_grid * (row_h + gap) + val_h + 0.1
    fig = new_figure(12, height)
    fig.suptitle(title, fontsize=12, y=1 - 0.15 / height)
    frac = lambda inches: inches / height                                  # noqa: E731
    losses_bottom = 1 - frac(head + loss_grid * (row_h + gap) - gap)
    grid = fig.add_gridspec(max(1, loss_grid), cols, left=0.07, right=0.93, top=1 - frac(head),
                            bottom=losses_bottom, hspace=gap / row_h, wspace=0.3)
    for n, key in enumerate(panels):
        row, col = divmod(n, cols)
        ax = fig.add_subplot(grid[row, col])
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if key == "probabilities":
            for i, k in enumerate(probs):
                steps, values = _series(train_rows, k)
                if len(values):
                    _draw_loss(ax, steps, values, PALETTE[(n + i) % len(PALETTE)], k, legend=False)
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("D's mean probability")
            ax.set_title("D(real) and D(fake): the probability D gives real and generated inputs", fontsize=9)
            ax.legend(loc="best", fontsize=8, framealpha=0.8)
            continue
        label, factor, second = axes.get(key, (key, None, ""))
        steps, values = _series(train_rows, key)
        if not len(values):
            continue
        _draw_loss(ax, steps, values, PALETTE[n % len(PALETTE)], key)
        ax.set_ylabel(key)
        ax.set_title(f"{label}   (last, smoothed: {smooth(list(values), max(1, len(values) // 50))[-1]:.4g})",
                     fontsize=9)
        if factor:
            sec = ax.secondary_yaxis("right", functions=(lambda v, f=factor: v * f, lambda v, f=factor: v / f))
            sec.set_ylabel(second, fontsize=8)
    if vrows:
        top = losses_bottom - frac(gap)
        if validation:
            fig.text(0.5, top, f"validation: {validation}", ha="center", va="top", fontsize=10)
            top -= frac(0.5)
        vgrid = fig.add_gridspec(1, len(VAL_PANELS), left=0.07, right=0.93, top=top, bottom=frac(0.55), wspace=0.3)
        best = best_row(rows, best_by) if best_by else None
        for i, (metric, ylabel, better) in enumerate(VAL_PANELS):
            ax = fig.add_subplot(vgrid[0, i])
            steps, values = _series(vrows, f"val_{metric}")
            if not len(values):
                continue
            labels = val_labels(vrows)
            ax.plot(steps, values, marker="o", markersize=3, color=PALETTE[(3 + i) % len(PALETTE)],
                    label=f"validation {metric.upper()}" + (" (mean)" if labels else ""))
            for j, label in enumerate(labels):                     # each set's figure (CycleGAN: A, B / AtoB, BtoA)
                s_steps, s_values = _series(vrows, f"val_{label}_{metric}")
                if len(s_values):
                    ax.plot(s_steps, s_values, linewidth=0.9, linestyle=("--", ":", "-.")[j % 3],
                            color=PALETTE[(5 + j) % len(PALETTE)], label=label)
            if best is not None and metric == best_by:
                ax.plot([best["step"]], [best[f"val_{metric}"]], marker="*", markersize=14, color="black",
                        linestyle="none", label=f"best: {best[f'val_{metric}']:.4g} at step {best['step']} (best.pt)")
            ax.set_xlabel("step")
            ax.set_ylabel(ylabel)
            ax.set_title(f"validation {metric.upper()} ({better})", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(loc="best", fontsize=8, framealpha=0.8)
    save_figure(fig, path)
    return True
