"""What a training run writes besides its checkpoint: the hooks the loop calls.

:class:`RunOutputs` is told by :class:`img2img.gan.trainer.Trainer` when a run starts, after
every step, at each epoch's end and when the run ends; it writes

* ``config.json``, the start-up lines, ``log.jsonl`` (one row per step and per validation pass);
* the sample grids (``samples/``), the loss plot (``losses.png``, redrawn at most every
  :data:`PLOT_EVERY_S` s) and the run page (``index.html``);
* validation while training (:meth:`RunOutputs.validate`) and ``best.pt``;
* the ``--keep-every`` snapshots, TensorBoard events (``tb/``) and the profiler's trace
  (``profile/``).

Only rank 0 writes (``trainer.main``); the hooks read the trainer's state and never change the
numbers it trains with.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from .. import report, runpage
from ..config import VAL_METRICS
from ..files import printable, remove_stale_temporaries
from ..nets import smallconv
from . import monitor

PLOT_EVERY_S = 30.0          # the loss plot is redrawn at an epoch's end when this long has passed (and at the end)


class RunOutputs:
    def __init__(self, trainer):
        self.tr = trainer
        if trainer.cfg.train.tensorboard and trainer.main:
            monitor.require_tensorboard()
        self.tb: monitor.TensorBoard | None = None
        self.profiler: monitor.StepProfiler | None = None
        self.log = None
        self._preview: dict | None = None
        self._plotted_at, self._plot_cost = time.monotonic(), 0.0

    # -- the run's start and end -----------------------------------------------
    def start(self) -> None:
        """Rank 0, before the first step: the folder, config.json, the log cut back to the
        checkpoint, the start-up lines, TensorBoard and the profiler."""
        tr, t = self.tr, self.tr.cfg.train
        tr.out.mkdir(parents=True, exist_ok=True)
        for sub in (tr.out, tr.out / "samples", tr.out / "snapshots", tr.out / "profile"):
            remove_stale_temporaries(sub)                   # half-written files of a killed run
        tr.cfg.save(tr.out / "config.json")
        tr._truncate_log()
        self.header()
        if t.tensorboard:        # events after the checkpoint (a killed run's) are dropped from the view
            self.tb = monitor.TensorBoard(tr.out / "tb", purge_step=tr.step + 1)
        if t.profile:
            self.profiler = monitor.StepProfiler(t.profile, tr.out / "profile", tr.device,
                                                 say=lambda msg: tqdm.write(msg, file=sys.stderr))

    def open_log(self):
        """log.jsonl for appending (rank 0; the others write nowhere), kept as :attr:`log`."""
        self.log = open(self.tr.out / "log.jsonl", "a", buffering=1) if self.tr.main else open(os.devnull, "w")
        return self.log

    def close(self) -> None:
        """After the loop, however it ended."""
        self.log = None
        if self.profiler is not None:
            self.profiler.close()

    def finish(self) -> None:
        """Rank 0, after the loop: the final weights' grid, model.pt, the run page, the last lines."""
        tr, t = self.tr, self.tr.cfg.train
        if t.sample_every and tr.step % t.sample_every:     # the final weights' grid, too
            self.sample()
        tr.save_model()
        rows = report.read_log(tr.out / "log.jsonl")
        self.write_page(rows, "stopped" if tr._stop.is_set() else "finished")
        if self.tb is not None:
            self.tb.close()
        msg = tr.stop_reason or f"finished {tr.step} steps"
        extra = ", best.pt" if (tr.out / "best.pt").exists() else ""
        print(printable(f"{msg}; run folder {tr.out} (index.html, latest.pt, model.pt{extra}, samples/, losses.png)"),
              file=sys.stderr)
        if tr.bad_files:
            print(f"{len(tr.bad_files)} file(s) could not be decoded and were skipped", file=sys.stderr)

    # -- each step and each epoch ----------------------------------------------
    def step(self, epoch: int, lr: float, logs: dict[str, float]) -> None:
        """After a training step: its log row, TensorBoard scalars, the profiler's step."""
        tr = self.tr
        skipped = {"skipped": len(tr.bad_files)} if tr.bad_files else {}
        self.log.write(json.dumps({"step": tr.step, "epoch": epoch + 1, "lr": lr,
                                   "time": round(tr.elapsed, 3), **logs, **skipped}) + "\n")
        if self.tb is not None:
            self.tb.scalars("train", {**logs, "lr": lr}, tr.step)
        if self.profiler is not None:
            self.profiler.step()

    def epoch_end(self, final: bool) -> None:
        """Rank 0, at an epoch's (or the run's) end, before latest.pt is written: validation (each
        epoch, or the last pass with --val-every), the sample grid, the --keep-every snapshot, the
        loss plot and the run page."""
        tr, t = self.tr, self.tr.cfg.train
        if tr.val_sets and (not t.val_every or final) and tr._validated_at != tr.step:
            self.validate()
        if not t.sample_every:
            self.sample()
        epoch, partial_epoch = divmod(tr.step, tr.steps_per_epoch)
        if t.keep_every and not partial_epoch and epoch % t.keep_every == 0:
            tr.save_generator(tr.out / "snapshots" / f"epoch_{epoch:03d}.pt")
        rows = report.read_log(tr.out / "log.jsonl")
        # the plot costs ~1-3 s (matplotlib): redrawn at most every PLOT_EVERY_S s and 20x its own cost
        if final or time.monotonic() - self._plotted_at >= max(PLOT_EVERY_S, 20 * self._plot_cost):
            began = time.monotonic()
            self.plot(rows)
            self._plotted_at, self._plot_cost = time.monotonic(), time.monotonic() - began
        self.write_page(rows, "training" if not final else ("stopped" if tr._stop.is_set() else "finished"))
        if self.tb is not None:
            self.tb.flush()

    # -- validation ------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Score the eval generator on the held-out data (the code of ``img2img eval``); log the
        figures; write best.pt when --best-by improved."""
        from ..scoring import validate
        tr, t = self.tr, self.tr.cfg.train
        began = time.monotonic()
        G = tr.eval_generator()
        metrics = validate(G, tr.cfg, tr.val_sets, tr.device)
        seconds = time.monotonic() - began
        tr._validated_at = tr.step
        row = {"step": tr.step, "epoch": math.ceil(tr.step / tr.steps_per_epoch),
               **{f"val_{k}": v for k, v in metrics.items()},
               "val_seconds": round(seconds, 3)}
        if self.log is not None:
            self.log.write(json.dumps(row) + "\n")
        if self.tb is not None:
            self.tb.scalars("val", {k: v for k, v in metrics.items() if k != "count"}, tr.step)
        value = metrics[t.best_by]
        better = tr.best is None or (value < tr.best["value"] if VAL_METRICS[t.best_by] == "min"
                                     else value > tr.best["value"])
        if better:
            tr.best = {"by": t.best_by, "value": value, "step": tr.step, "data": tr.cfg.data.validation(),
                       "metrics": {k: v for k, v in metrics.items()}}
            tr.save_generator(tr.out / "best.pt", G, best=tr.best)
        parts = [f"{s.label} {metrics[s.label + '_l1']:.4f}" for s in tr.val_sets if s.label + "_l1" in metrics]
        note = (f"step {tr.step}: validation ({metrics['count']} outputs scored): L1 {metrics['l1']:.4f}"
                + (f" ({', '.join(parts)})" if parts else "")
                + f", PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.4f} ({seconds:.1f} s)"
                + (f"; best {t.best_by} so far, best.pt written" if better else
                   f"; best {t.best_by} {tr.best['value']:.4g} at step {tr.best['step']}"))
        bar = tr._bar
        if bar is not None and not bar.disable:
            bar.write(note, file=sys.stderr)
            bar.set_postfix_str(tr._postfix())             # the new best at once, not a step later
        else:                                              # --no-progress: the line alone
            print(note, file=sys.stderr)
        return metrics

    # -- grids, plot, page, start-up lines -------------------------------------
    @torch.no_grad()
    def sample(self) -> Path:
        """Write the sample grid for the current step (fixed inputs, so grids compare over time)."""
        tr = self.tr
        G = tr.eval_generator()
        batch = tr._to_device(self.preview_batch())
        fake = tr.model.generate(batch, G=G)
        rows = tr.model.display(batch, fake)
        name = f"step_{tr.step:07d}.png" if tr.cfg.train.sample_every else \
            f"epoch_{math.ceil(tr.step / tr.steps_per_epoch):03d}.png"
        path = tr.out / "samples" / name
        if len(rows) == 1:
            grid = report.save_image_grid(rows[0], path)
        else:
            grid = report.save_rows_grid(rows, path)
        if self.tb is not None:
            self.tb.image("samples", grid, tr.step)
        return path

    def preview_batch(self) -> dict:
        """The grid's inputs, read once (so that a file that breaks mid-run cannot change the rows)."""
        if self._preview is None:
            self._preview = self.tr.model.preview_batch(self.tr.dataset)
        return self._preview

    def plot(self, rows: list[dict] | None = None) -> None:
        tr = self.tr
        rows = report.read_log(tr.out / "log.jsonl") if rows is None else rows
        # G terms are missing from D-only steps (--d-steps > 1): look further back than the last row
        recent = report.loss_rows(rows)[-64:]
        keys = [k for k in tr.family.loss_names + ("GP",) if any(k in r for r in recent)]
        report.loss_plot(rows, tr.out / "losses.png", keys, title=f"{tr.cfg.model.kind} losses ({tr.out.name})",
                         axes=tr.family.loss_axes(tr.cfg), best_by=tr.cfg.train.best_by,
                         validation=tr.family.validation_label(tr.cfg, tr.val_sets) if tr.val_sets else "")

    def write_page(self, rows: list[dict], state: str) -> Path:
        """RUN/index.html (see :mod:`img2img.runpage`)."""
        tr = self.tr
        planned, estimate = tr.step, False                   # a run that ended did what it did
        if state == "training":
            planned, estimate = tr._plan
        spe = tr.steps_per_epoch
        of = "~?" if planned is None else f"{'~' if estimate else ''}{math.ceil(planned / spe)}"
        epochs = f"epoch {math.ceil(tr.step / spe)} of {of} ({spe} steps each)"
        val = ""
        if tr.val_sets:
            val = f"{tr.family.validation_label(tr.cfg, tr.val_sets)} ({tr.cfg.data.validation()})"
        return runpage.write(tr.out, tr.cfg, rows, {
            "step": tr.step, "planned": "~?" if planned is None else f"{'~' if estimate else ''}{planned}",
            "epochs": epochs,
            "elapsed": tr.elapsed, "state": state, "validation": val})

    def header(self) -> None:
        """The start-up lines: data, networks, device, steps; CPU kernels; validation."""
        tr = self.tr
        n_g = sum(p.numel() for p in tr.G.parameters())
        n_d = sum(p.numel() for p in tr.D.parameters())
        desc = tr.dataset.describe() if hasattr(tr.dataset, "describe") else f"{len(tr.dataset)} items"
        verb = "resuming at" if tr.step else "starting at"
        print(printable(f"img2img {tr.cfg.model.kind}: {desc}; G {n_g / 1e6:.2f}M, D {n_d / 1e6:.2f}M parameters; "
                        f"device {tr.device}; {tr.steps_per_epoch} steps/epoch, {tr.total_steps} steps; "
                        f"{verb} step {tr.step}; run folder {tr.out}"), file=sys.stderr)
        if tr.device.type == "cpu":
            first = next((m for m in tr.G.modules() if isinstance(m, torch.nn.Conv2d)), None)
            if first is not None:
                c = tr.cfg
                line = smallconv.prepare(tr.G, (c.train.batch_size, first.in_channels, c.data.crop_size,
                                                  c.data.crop_size))
                if line:
                    print(printable(line), file=sys.stderr)
        if tr.val_sets:
            t = tr.cfg.train
            every = f"every {t.val_every} steps" if t.val_every else "after every epoch"
            print(f"validation: {tr.family.validation_label(tr.cfg, tr.val_sets)} "
                  f"({tr.cfg.data.validation()}), {every}; best.pt by {t.best_by}", file=sys.stderr)
            skipped = list(dict.fromkeys(m for s in tr.val_sets for m in s.skipped))
            if skipped:
                print(f"warning: validation leaves {len(skipped)} bad file(s) out, the first: {skipped[0]}",
                      file=sys.stderr)


__all__ = ["PLOT_EVERY_S", "RunOutputs"]
