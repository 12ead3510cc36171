"""Evaluation on held-out pairs: mean L1, PSNR and SSIM, an HTML page and results.json.

Each pair's input is translated exactly as ``img2img translate`` would
(same policy, same output at the input's size); then the output and the
target are both resized to the model's size (``image_size``², e.g. 256² for
a 256 model) and compared as RGB in [0, 1]:

* ``l1``   -- mean absolute difference (lower is better);
* ``psnr`` -- kornia's PSNR in dB with max value 1 (higher is better; an exact
  match is capped at 100 dB so the JSON stays finite);
* ``ssim`` -- kornia's SSIM, 11x11 Gaussian window, averaged over the image
  and the channels (higher is better, 1 is identical);
* ``texture`` -- the output's :func:`img2img.metrics.texture`: power at the harmonics of 2-, 4-
  and 8-pixel periods relative to the power around them (a periodic up-sampling grid, the
  "quilt", raises it; ``texture_target`` is the targets' figure for comparison).

The means are plain averages of the per-pair figures.  The folder ``out``
receives ``results.json`` (``l1``, ``psnr``, ``ssim``, ``texture``, ``texture_target`` means and one entry per
pair under ``pairs``), ``index.html`` (one row per pair: input, output and
target thumbnails with the three figures; the means at the top) and the
thumbnails under ``images/``.

:func:`img2img.scoring.validate` scores a generator held in memory the same way (one
function, :func:`img2img.scoring.score`, does the comparing for both): the trainer calls it
on the held-out data of ``--val`` / ``--val-split`` while it trains.  The figures themselves
are :mod:`img2img.metrics`.
"""
from __future__ import annotations

import html
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .color import to_float, to_uint8
from .config import DIRECTIONS, ConfigError
from .data import holdout
from .data.holdout import HeldOut
from .data.io import DataError
from .data.loader import SafeItems, make_loader
from .files import atomic_write_text, check_output, printable, save_image
from .metrics import METRICS, texture
from .scoring import score
from .translate import Translator, check_inference_options


def _read_item(held: HeldOut, i: int) -> dict:
    """(input, target) uint8 tensors of item ``i`` of ``held``."""
    a, b = held.read(i)
    return {"input": torch.from_numpy(np.array(a)), "target": torch.from_numpy(np.array(b))}


def evaluate(model: str | Path | Translator, pairs: str | Path, out: str | Path, *, direction: str | None = None,
             device: str = "auto", policy: str = "resize", batch_size: int = 8, workers: int | None = None,
             overwrite: bool = False, progress: bool = True, title: str | None = None) -> dict:
    """Translate the pairs under ``pairs`` and score them; write ``out/index.html`` and ``out/results.json``.

    ``direction`` defaults to the one the model was trained with.  Bad pairs
    are left out and listed under ``"skipped"``.  Returns the results dict.
    """
    from tqdm import tqdm
    pairs, out = Path(pairs), Path(out)
    if direction is not None and direction not in DIRECTIONS:
        raise ConfigError(f"direction must be AtoB or BtoA, got {direction!r}")
    check_inference_options(policy=policy, batch_size=batch_size, workers=workers)
    if pairs.exists():
        src, dst = pairs.resolve(), out.resolve()
        if dst == src or src in dst.parents:
            raise ConfigError(f"{out}: the report folder is inside the data folder {pairs}; choose another --out")
        for p in (out / "results.json", out / "index.html", out / "images"):
            _refuse(p, out, pairs)
    existing = [p for p in (out / "index.html", out / "results.json") if p.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{existing[0]}: exists; choose another --out or pass --overwrite")
    tr = model if isinstance(model, Translator) else Translator.load(
        model, device=device, policy=policy, batch_size=batch_size)
    if direction and direction != tr.direction and len(tr.family.directions(tr.cfg)) > 1:
        if isinstance(model, Translator):            # a model that translates both ways: pick the generator
            raise ConfigError(f"this Translator runs {tr.direction}; load it with direction={direction!r}")
        tr = Translator.load(model, device=device, policy=policy, batch_size=batch_size, direction=direction)
    cfg = tr.cfg
    direction = direction or tr.direction            # which side of the pairs is the input
    held = holdout.paired(pairs, direction=direction, size=tr.size, colorization=cfg.data.colorization,
                          gray_target=cfg.model.output_nc == 1 and not cfg.data.colorization, cache=False)
    skipped = list(held.skipped)
    for msg in skipped:
        print(printable(f"warning: {msg}; skipped"), file=sys.stderr)
    loader = make_loader(SafeItems(partial(_read_item, held), held.names), tr.batch_size, workers, tr.device)
    entries: list[dict] = []
    start = time.monotonic()
    with tqdm(total=len(held), desc="eval", unit="pair", disable=not progress, dynamic_ncols=True,
              file=sys.stderr) as bar:
        for items in loader:
            good = []
            for it in items:
                if "error" in it:
                    skipped.append(it["error"])
                    bar.write(printable(f"warning: {it['error']}; skipped"), file=sys.stderr)
                else:
                    good.append(it)
            bar.update(len(items) - len(good))
            if not good:
                continue
            scored = score(tr.translate_tensors, [to_float(it["input"].numpy()) for it in good],
                           [to_float(it["target"].numpy()) for it in good], tr.size, held.gray_target)
            for it, s in zip(good, scored):
                name = held.names[it["index"]]
                entry = {"name": name, **{k: s[k] for k in METRICS}, "texture_target": texture(s["target"])}
                stem = Path(name).with_suffix("")
                for k in ("input", "output", "target"):
                    rel = Path("images") / f"{stem}_{k}.png"
                    _refuse(out / rel, out, pairs)        # symbolic links resolved: never into the data
                    save_image(to_uint8(s[k]), out / rel)
                    entry[k] = rel.as_posix()
                entries.append(entry)
            bar.update(len(good))
    if not entries:
        raise DataError(f"{pairs}: no pair could be evaluated ({len(skipped)} skipped)")
    entries.sort(key=lambda e: _natural(e["name"]))
    results = {
        "model": tr.source, "backend": tr.backend.name, "data": str(pairs), "direction": direction,
        "policy": tr.policy, "size": tr.size, "count": len(entries),
        **{k: float(np.mean([e[k] for e in entries])) for k in METRICS},
        "texture_target": float(np.mean([e["texture_target"] for e in entries])),
        "seconds": round(time.monotonic() - start, 3),
        "skipped": skipped, "pairs": entries,
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / "index.html", render_html(results, title))
    return results


def _refuse(path: Path, out: Path, pairs: Path) -> None:
    problem = check_output(path, out, [pairs])
    if problem:
        raise ConfigError(problem)


def _natural(name: str) -> list:
    import re
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def render_html(results: dict, title: str | None = None) -> str:
    """A self-contained page: the means, then one row per pair (input | output | target, L1, PSNR, SSIM)."""
    esc = html.escape
    title = title or f"img2img eval: {Path(results['model']).name} on {results['data']}"
    thumb = min(192, results["size"])

    def img(src: str) -> str:
        return f'<a href="{esc(src)}"><img src="{esc(src)}" width="{thumb}" height="{thumb}" loading="lazy"></a>'

    rows = "\n".join(
        f"<tr><td class=name>{esc(e['name'])}</td><td>{img(e['input'])}</td><td>{img(e['output'])}</td>"
        f"<td>{img(e['target'])}</td><td class=num>{e['l1']:.4f}</td><td class=num>{e['psnr']:.2f}</td>"
        f"<td class=num>{e['ssim']:.4f}</td><td class=num>{e['texture']:.2f}</td></tr>" for e in results["pairs"])
    skipped = ""
    if results["skipped"]:
        items = "".join(f"<li>{esc(s)}</li>" for s in results["skipped"])
        skipped = f"<details><summary>{len(results['skipped'])} pair(s) skipped</summary><ul>{items}</ul></details>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
td, th {{ padding: 4px 8px; border-bottom: 1px solid #ddd; vertical-align: middle; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.name {{ font-family: monospace; }}
.means td {{ font-size: 1.2em; font-weight: bold; }}
img {{ image-rendering: auto; display: block; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>model <code>{esc(str(results['model']))}</code> ({esc(results['backend'])}), data <code>{esc(results['data'])}</code>,
direction {esc(results['direction'])}, policy {esc(results['policy'])}; {results['count']} pair(s) compared at
{results['size']}&times;{results['size']} as RGB in [0, 1]; PSNR and SSIM from kornia. Texture: the outputs'
power at the harmonics of 2-, 4- and 8-pixel periods relative to the power around them (a periodic
up-sampling grid raises it; the targets score {results['texture_target']:.2f}).</p>
<table class=means><tr><th>mean L1 &darr;</th><th>mean PSNR (dB) &uarr;</th><th>mean SSIM &uarr;</th>
<th>texture (targets {results['texture_target']:.2f})</th></tr>
<tr><td class=num>{results['l1']:.4f}</td><td class=num>{results['psnr']:.2f}</td>
<td class=num>{results['ssim']:.4f}</td><td class=num>{results['texture']:.2f}</td></tr></table>
{skipped}
<table>
<tr><th>pair</th><th>input</th><th>output</th><th>target</th><th class=num>L1</th><th class=num>PSNR</th>
<th class=num>SSIM</th><th class=num>texture</th></tr>
{rows}
</table>
</body></html>
"""


__all__ = ["evaluate", "render_html"]
