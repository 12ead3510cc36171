"""RUN/index.html: one page per run, readable in a browser straight from the disk (no server).

The trainer rewrites it (atomically) after every epoch: the run's state (step, epochs,
time, the best validation pass), the loss plot, the validation table, the sample grid of
every epoch, newest first, and every setting of the run.  Links are relative (samples/,
losses.png, the checkpoints), so the folder can be copied elsewhere and still opens.
"""
from __future__ import annotations

import html
import time
from pathlib import Path

from .config import VAL_METRICS, RunConfig
from .files import atomic_write_text
from .report import best_row, val_labels, val_rows

esc = html.escape


def _samples(run: Path) -> list[Path]:
    """The sample grids, newest first (by modification time, then name)."""
    files = [p for p in (run / "samples").glob("*.png") if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)


def _grid_caption(path: Path) -> str:
    kind, _, number = path.stem.partition("_")
    return f"{kind} {int(number)}" if number.isdigit() else path.stem


def _enlarged(path: Path, target: int = 600) -> str:
    """A style attribute that shows a small grid (e.g. 64-pixel tiles) a whole number of times larger."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            width = im.width
    except OSError:
        return ""
    k = target // max(1, width)
    return f' class=pixels style="width: {k * width}px"' if k >= 2 else ""


def _settings(cfg: RunConfig) -> str:
    rows = []
    for section, values in cfg.to_dict().items():
        for name, value in values.items():
            rows.append(f"<tr><td>{esc(section)}</td><td><code>{esc(name)}</code></td>"
                        f"<td><code>{esc(repr(value) if isinstance(value, str) else str(value))}</code></td></tr>")
    return "\n".join(rows)


def _validation_table(rows: list[dict], by: str) -> str:
    vals = val_rows(rows)
    if not vals:
        return ""
    best = best_row(rows, by)
    labels = val_labels(rows)                  # each set's L1 (CycleGAN: A, B cycles or AtoB, BtoA pairs)

    def num(value, fmt: str) -> str:
        return f"<td class=num>{format(value, fmt) if isinstance(value, (int, float)) else ''}</td>"

    body = []
    for r in reversed(vals):
        mark = " class=best" if r is best else ""
        star = " &#9733; best.pt" if r is best else ""
        body.append(f"<tr{mark}><td class=num>{r['step']}</td><td class=num>{r.get('epoch', '')}</td>"
                    + num(r["val_l1"], ".4f") + "".join(num(r.get(f"val_{k}_l1"), ".4f") for k in labels)
                    + num(r["val_psnr"], ".2f") + num(r["val_ssim"], ".4f") + num(r.get("val_texture"), ".2f")
                    + f"<td class=num>{r.get('val_count', '')}</td>"
                    f"<td class=num>{r.get('val_seconds', 0):.1f}</td><td>{star}</td></tr>")
    arrow = {"min": "&darr;", "max": "&uarr;"}
    per_set = "".join(f"<th>L1 {esc(k)}</th>" for k in labels)
    l1 = f"L1{' (mean)' if labels else ''} {arrow[VAL_METRICS['l1']]}"
    return f"""<table class=val>
<tr><th>step</th><th>epoch</th><th>{l1}</th>{per_set}<th>PSNR (dB) {arrow[VAL_METRICS['psnr']]}</th>
<th>SSIM {arrow[VAL_METRICS['ssim']]}</th><th title="power at the harmonics of 2-, 4- and 8-pixel periods relative to the power around them; about 1 without a periodic up-sampling grid">texture</th><th>outputs scored</th><th>seconds</th><th></th></tr>
{''.join(body)}
</table>"""


def render(run: Path, cfg: RunConfig, rows: list[dict], status: dict) -> str:
    """The page.  ``status``: ``step``, ``planned`` (steps the run will do), ``epoch``, ``epochs``,
    ``elapsed`` (seconds), ``state`` (training / finished / stopped ...), ``validation`` (what it
    compares, in words; "" without validation)."""
    run = Path(run)
    t = cfg.train
    title = f"img2img {cfg.model.kind}: {run.name}"
    files = [name for name in ("best.pt", "model.pt", "latest.pt", "config.json", "log.jsonl") if (run / name).exists()]
    links = " &middot; ".join(f'<a href="{esc(n)}">{esc(n)}</a>' for n in files)
    for folder in ("snapshots", "profile", "tb"):
        if (run / folder).is_dir():
            links += f' &middot; <a href="{folder}/">{folder}/</a>'
    best = best_row(rows, t.best_by)
    best_text = (f"best {t.best_by.upper()} {best[f'val_{t.best_by}']:.4g} at step {best['step']} "
                 f"(<a href=\"best.pt\">best.pt</a>)") if best else ""
    stamp = int(status.get("step", 0))
    plot = (f'<p><a href="losses.png?v={stamp}"><img class=plot src="losses.png?v={stamp}" '
            f'alt="loss plot"></a></p>') if (run / "losses.png").exists() else "<p>(no loss plot yet)</p>"
    validation = ""
    if status.get("validation"):
        table = _validation_table(rows, t.best_by) or "<p>(no validation pass yet)</p>"
        validation = f"<h2>Validation</h2>\n<p>{esc(status['validation'])}; best.pt is the pass with the best " \
                     f"{esc(t.best_by.upper())}.</p>\n{table}"
    grids = "\n".join(
        f'<figure><figcaption>{esc(_grid_caption(p))}</figcaption><a href="samples/{esc(p.name)}">'
        f'<img src="samples/{esc(p.name)}?v={p.stat().st_mtime_ns}" alt="{esc(p.name)}" loading="lazy"{_enlarged(p)}>'
        f'</a></figure>' for p in _samples(run))
    elapsed = float(status.get("elapsed", 0.0))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; max-width: 1250px; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
td, th {{ padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.best td {{ font-weight: bold; background: #fff6d5; }}
img.plot {{ max-width: 100%; }}
figure {{ margin: 0 0 1.2em 0; }} figcaption {{ font-weight: bold; margin-bottom: 4px; }}
figure img {{ max-width: 100%; border: 1px solid #ccc; }} img.pixels {{ image-rendering: pixelated; }}
.status {{ font-size: 1.1em; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p class=status>{esc(str(status.get('state', '')))}: step {status.get('step', 0)} of {esc(str(status.get('planned', '?')))},
{esc(str(status.get('epochs', '')))}; {elapsed / 60:.1f} min of training{'; ' + best_text if best_text else ''}.
Updated {esc(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>
<p>{links}</p>
<h2>Losses</h2>
{plot}
{validation}
<h2>Samples, newest first</h2>
{grids or '<p>(no sample grid yet)</p>'}
<h2>Settings</h2>
<table>
<tr><th>section</th><th>setting</th><th>value</th></tr>
{_settings(cfg)}
</table>
</body></html>
"""


def write(run: Path, cfg: RunConfig, rows: list[dict], status: dict) -> Path:
    path = Path(run) / "index.html"
    atomic_write_text(path, render(run, cfg, rows, status))
    return path
