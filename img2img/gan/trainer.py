"""The one training loop for every GAN here (pix2pix, DCGAN, the MLP GAN).

Each iteration takes one batch and makes one discriminator update; every
``d_steps``-th iteration is followed by a generator update (Algorithm 1 of
the GAN paper with k = d_steps).  What G is fed, what D sees, the extra
generator terms, the sample grids and the data come from the model family
(:mod:`img2img.families`); this module never asks which family it trains.

The run folder (``TrainConfig.out``) receives::

    config.json        the RunConfig
    log.jsonl          one JSON line per step: raw losses, D(real), D(fake), lr;
                       and one per validation pass: val_l1, val_psnr, val_ssim
    latest.pt          full training state (written atomically; --resume reads it)
    model.pt           the generator alone with its config (for translate/export)
    best.pt            the same, from the validation pass with the best --best-by (with --val / --val-split)
    snapshots/         generator-only snapshots every --keep-every N epochs
    samples/*.png      sample grids (pix2pix: input | output | target rows)
    losses.png         the loss plot (matplotlib), validation metrics in their own row
    index.html         the run page: state, plot, validation table, every sample grid, settings
    tb/                TensorBoard events (--tensorboard)
    profile/           torch.profiler trace and top operators (--profile N)
"""
from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import families, report, runpage
from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..config import DATA_SOURCES, RESUMABLE, VAL_METRICS, ConfigError, RunConfig, field_section
from ..device import amp_dtype, resolve_device
from ..nets import smallconv
from ..files import FolderBusy, atomic_write_text, folder_lock, printable, remove_stale_temporaries, within
from . import distributed, monitor, objectives
from .ema import EMAMeters, WeightEMA


PLOT_EVERY_S = 30.0          # the loss plot is redrawn at an epoch's end when this long has passed (and at the end)


class TrainingError(RuntimeError):
    """Training had to stop (non-finite loss, unwritable run folder...): one-line message."""


def lr_factor(progress: float, epochs: int, epochs_decay: int) -> float:
    """Constant, then linear decay to zero, in the ratio epochs : epochs_decay of the run.

    ``progress`` in [0, 1] is how far the run is: the larger of steps done / steps in
    epochs + epochs_decay, and minutes trained / --time-limit, so the schedule
    completes whichever of the two ends the run.
    """
    if epochs_decay <= 0:
        return 1.0
    start = epochs / (epochs + epochs_decay)
    if progress <= start:
        return 1.0
    return max(0.0, 1.0 - (progress - start) / (1.0 - start))


class Trainer:
    def __init__(self, cfg: RunConfig, dataset=None, checkpoint: dict | None = None):
        """``checkpoint``: a loaded latest.pt to continue from (see :func:`train`)."""
        self.cfg = families.check(cfg)
        self.family = families.get(cfg.model.kind)
        t = cfg.train
        self.out = Path(t.out)
        self.rank, self.world, device_name = distributed.setup(t.device)
        self.main = self.rank == 0                 # only rank 0 writes anything
        self.device = resolve_device(device_name)
        if self.device.type == "cuda":            # fastest conv algorithms for the fixed input size; TF32
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        ckpt = checkpoint

        torch.manual_seed(t.seed)                  # identical initial weights on every rank
        random.seed(t.seed)
        self.model = self.family(cfg)
        self.G = self.model.G.to(self.device)
        self.D = self.model.D.to(self.device)
        self.channels_last = t.channels_last
        if self.channels_last:                     # affects 4-d (convolution) weights only
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        adam = dict(betas=(t.beta1, t.beta2), **_fast_adam())
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=t.lr, **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=t.lr_d or t.lr, **adam)
        self.g_ema = WeightEMA(self.G, t.g_ema, t.g_ema_start) if t.g_ema > 0 else None
        self.amp_dtype = amp_dtype(t.amp, self.device)
        # fp16 needs loss scaling against gradient underflow; bf16 and fp32 do not
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        if t.compile:                              # compiled in place: state_dict keys stay the same
            for net in _networks(self.G) + _networks(self.D):
                net.compile()
        self.d_loss_fn, self.g_loss_fn = objectives.get(t.objective)
        if t.label_smoothing:
            self.d_loss_fn = functools.partial(objectives.bce_d, smooth=t.label_smoothing)
        self.meters = EMAMeters(t.ema_decay)

        self.dataset = dataset = self.family.dataset(cfg) if dataset is None else dataset
        n = len(dataset)
        self.drop_last = n >= t.batch_size
        self.global_batch = t.batch_size * self.world
        self.drop_last = n >= self.global_batch
        self.steps_per_epoch = max(1, n // self.global_batch if self.drop_last else 1)
        self.schedule_steps = (t.epochs + t.epochs_decay) * self.steps_per_epoch
        self.total_steps = self.schedule_steps
        if t.max_steps is not None:
            self.total_steps = min(self.total_steps, t.max_steps)
        self.step = 0
        self.elapsed = 0.0
        self.bad_files: set[str] = set()
        self._preview: dict | None = None
        self._outputs_at = -1                  # step at which end_of_epoch last wrote its outputs
        self._stop = threading.Event()
        self.stop_reason = ""
        # validation (rank 0 alone scores): the held-out data, decoded once; the best pass so far
        self.val_sets = self.family.validation_sets(cfg) if self.main else []
        self.best: dict | None = None
        self._validated_at = -1
        if t.tensorboard and self.main:
            monitor.require_tensorboard()
        self.tb: monitor.TensorBoard | None = None
        self.profiler: monitor.StepProfiler | None = None
        self._bar = None
        self._log = None
        self._plotted_at, self._plot_cost = time.monotonic(), 0.0
        self._plan: tuple[int | None, bool] = (self.total_steps, False)   # (steps the run will do, estimated?)
        if ckpt is not None:
            try:
                self._load_state(ckpt["state"])
            except (RuntimeError, KeyError, TypeError, ValueError) as e:
                lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
                raise CheckpointError(f"{self.out / 'latest.pt'}: its training state does not fit the stored "
                                      f"configuration ({lines[-1][:160]})") from None
        if self.world > 1:                         # different dropout/noise on each rank
            torch.manual_seed(t.seed * 7919 + self.step * 104_729 + self.rank)

    # -- one iteration -------------------------------------------------------
    def train_step(self, batch: dict) -> dict[str, float]:
        t, m = self.cfg.train, self.model
        do_g = (self.step + 1) % t.d_steps == 0
        scaler = self.scaler
        self.G.train()
        self.D.train()
        with torch.set_grad_enabled(do_g), self._autocast():
            fakes = m.generate(batch)

        self.D.requires_grad_(True)
        logs: dict[str, float] = {}
        noise = self.instance_noise_std()
        with self._autocast():
            loss_d, p_real, p_fake, gps = 0.0, [], [], []
            for name, D, real_in, fake_in in m.d_terms(batch, fakes):
                fake_in = fake_in.detach()
                if noise > 0:                      # instance noise (Sonderby et al., 2017), decaying to 0
                    real_in = real_in + noise * torch.randn_like(real_in)
                    fake_in = fake_in + noise * torch.randn_like(fake_in)
                d_real, d_fake = D(real_in), D(fake_in)
                loss = self.d_loss_fn(d_real.float(), d_fake.float())
                if t.objective == "wgan-gp":
                    gp = objectives.gradient_penalty(D, real_in, fake_in)
                    loss = loss + t.gp_weight * gp
                    gps.append(gp.item())
                loss = loss * m.d_loss_scale
                logs[name] = loss.item()
                loss_d = loss_d + loss
                p_real.append(objectives.d_probability(d_real.detach().float(), t.objective).item())
                p_fake.append(objectives.d_probability(d_fake.detach().float(), t.objective).item())
        self.opt_d.zero_grad(set_to_none=True)
        scaler.scale(loss_d).backward()
        distributed.average_gradients(self.D)
        scaler.step(self.opt_d)
        if gps:
            logs["GP"] = sum(gps)
        logs.update(D_real=sum(p_real) / len(p_real), D_fake=sum(p_fake) / len(p_fake))

        if do_g:
            self.D.requires_grad_(False)
            with self._autocast():
                adversarial, extra = m.g_terms(batch, fakes)
                if noise > 0:
                    adversarial = [(name, D, x + noise * torch.randn_like(x)) for name, D, x in adversarial]
                gan = {name: self.g_loss_fn(D(fake_in).float()) for name, D, fake_in in adversarial}
                loss_g = sum(gan.values()) + sum(extra.values())
            self.opt_g.zero_grad(set_to_none=True)
            scaler.scale(loss_g).backward()
            distributed.average_gradients(self.G)
            scaler.step(self.opt_g)
            self.D.requires_grad_(True)
            if self.g_ema is not None:
                self.g_ema.update(self.G)
            logs.update({k: v.item() for k, v in gan.items()})
            logs.update({k: v.item() for k, v in extra.items()})
        scaler.update()
        logs = distributed.mean_of(logs, self.device)
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if bad:
            latest = self.out / "latest.pt"
            kept = f"the last good checkpoint {latest} is kept" if latest.exists() else "no checkpoint was written yet"
            raise TrainingError(f"step {self.step + 1}: {', '.join(bad)} loss is not finite ({logs[bad[0]]}); "
                                f"stopped, {kept} (a lower --lr may help)")
        return logs

    # -- the loop ------------------------------------------------------------
    def fit(self) -> Path:
        t = self.cfg.train
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            for sub in (self.out, self.out / "samples", self.out / "snapshots", self.out / "profile"):
                # half-written files of a killed run
                remove_stale_temporaries(sub)
            self.cfg.save(self.out / "config.json")
            self._truncate_log()
            self._print_header()
            if t.tensorboard:        # events after the checkpoint (a killed run's) are dropped from the view
                self.tb = monitor.TensorBoard(self.out / "tb", purge_step=self.step + 1)
            if t.profile:
                self.profiler = monitor.StepProfiler(t.profile, self.out / "profile", self.device,
                                                     say=lambda msg: tqdm.write(msg, file=sys.stderr))
        restore = self._install_sigint()
        start, base, first_step = time.monotonic(), self.elapsed, self.step
        planned, estimate = self._plan = monitor.planned_steps(self.step, self.total_steps, self._limit_s(),
                                                               self.elapsed, 0, 0.0)
        bar = self._bar = tqdm(total=planned, initial=self.step, unit="step", dynamic_ncols=True, file=sys.stderr,
                               desc=monitor.epochs_label(self.step, planned, self.steps_per_epoch, estimate),
                               disable=not (t.progress and self.main))
        try:
            with (open(self.out / "log.jsonl", "a", buffering=1) if self.main else open(os.devnull, "w")) as log:
                self._log = log
                while self.step < self.total_steps and not self._stop.is_set():
                    epoch, first = divmod(self.step, self.steps_per_epoch)
                    end = min(self.steps_per_epoch, first + self.total_steps - self.step)
                    for batch in self._loader(epoch, first, end - first):
                        self._report_bad(batch.pop("errors", []), bar)
                        if not batch:                      # every item of the batch failed to decode
                            self.step += 1
                            continue
                        batch = self._to_device(batch)
                        lr = self._set_lr()
                        logs = self.train_step(batch)
                        self.step += 1
                        self.elapsed = base + time.monotonic() - start
                        skipped = {"skipped": len(self.bad_files)} if self.bad_files else {}
                        log.write(json.dumps({"step": self.step, "epoch": epoch + 1, "lr": lr,
                                              "time": round(self.elapsed, 3), **logs, **skipped}) + "\n")
                        self.meters.update(logs)
                        if self.tb is not None:
                            self.tb.scalars("train", {**logs, "lr": lr}, self.step)
                        if self.profiler is not None:
                            self.profiler.step()
                        self._advance(bar, self.step - first_step, time.monotonic() - start)
                        if self.main and t.sample_every and self.step % t.sample_every == 0:
                            self.sample()
                        epoch_end = self.step % self.steps_per_epoch == 0 or self.step >= self.total_steps
                        if self.main and t.save_every and self.step % t.save_every == 0 and not epoch_end:
                            self.save()        # (an epoch's end saves in end_of_epoch, after the epoch's grid)
                        if self.val_sets and t.val_every and self.step % t.val_every == 0:
                            self.validate()
                        if t.time_limit and self.elapsed >= t.time_limit * 60:
                            self.stop_reason = f"time limit of {t.time_limit:g} min reached"
                            self._stop.set()
                        if distributed.any_rank(self._stop.is_set(), self.device):
                            self._stop.set()
                            break
                    if self.step % self.steps_per_epoch == 0 or self.step >= self.total_steps:
                        self.end_of_epoch(final=self.step >= self.total_steps or self._stop.is_set())
                if self._stop.is_set() and self._outputs_at != self.step:   # not already written at an epoch's end
                    self.end_of_epoch(final=True)
        finally:
            restore()
            bar.close()
            self._bar = self._log = None
            if self.profiler is not None:
                self.profiler.close()
        if not self.main:
            return self.out
        if t.sample_every and self.step % t.sample_every:     # the final weights' grid, too
            self.sample()
        self.save_model()
        rows = report.read_log(self.out / "log.jsonl")
        self.write_page(rows, "stopped" if self._stop.is_set() else "finished")
        if self.tb is not None:
            self.tb.close()
        msg = self.stop_reason or f"finished {self.step} steps"
        extra = ", best.pt" if (self.out / "best.pt").exists() else ""
        print(printable(f"{msg}; run folder {self.out} (index.html, latest.pt, model.pt{extra}, samples/, losses.png)"),
              file=sys.stderr)
        if self.bad_files:
            print(f"{len(self.bad_files)} file(s) could not be decoded and were skipped", file=sys.stderr)
        return self.out

    def end_of_epoch(self, final: bool = False) -> None:
        """An epoch's (or the run's) end: validation (each epoch, or the last pass with --val-every),
        sample grid, the --keep-every snapshot, the loss plot and the run page, then latest.pt: the
        checkpoint marks them done, so a kill before it makes a resumed run write them again
        (never a checkpoint without its grid)."""
        self._outputs_at = self.step
        if not self.main:
            return
        t = self.cfg.train
        if self.val_sets and (not t.val_every or final) and self._validated_at != self.step:
            self.validate()
        if not t.sample_every:
            self.sample()
        epoch, partial_epoch = divmod(self.step, self.steps_per_epoch)
        if t.keep_every and not partial_epoch and epoch % t.keep_every == 0:
            self.save_generator(self.out / "snapshots" / f"epoch_{epoch:03d}.pt")
        rows = report.read_log(self.out / "log.jsonl")
        # the plot costs ~1-3 s (matplotlib): redrawn at most every PLOT_EVERY_S s and 20x its own cost
        if final or time.monotonic() - self._plotted_at >= max(PLOT_EVERY_S, 20 * self._plot_cost):
            began = time.monotonic()
            self.plot(rows)
            self._plotted_at, self._plot_cost = time.monotonic(), time.monotonic() - began
        self.write_page(rows, "training" if not final else ("stopped" if self._stop.is_set() else "finished"))
        if self.tb is not None:
            self.tb.flush()
        self.save()

    # -- validation ------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Score the eval generator on the held-out data (the code of ``img2img eval``); log the
        figures; write best.pt when --best-by improved."""
        from ..scoring import validate
        t = self.cfg.train
        began = time.monotonic()
        G = self.eval_generator()
        metrics = validate(G, self.cfg, self.val_sets, self.device)
        seconds = time.monotonic() - began
        self._validated_at = self.step
        row = {"step": self.step, "epoch": math.ceil(self.step / self.steps_per_epoch),
               **{f"val_{k}": v for k, v in metrics.items()},
               "val_seconds": round(seconds, 3)}
        if self._log is not None:
            self._log.write(json.dumps(row) + "\n")
        if self.tb is not None:
            self.tb.scalars("val", {k: v for k, v in metrics.items() if k != "count"}, self.step)
        value = metrics[t.best_by]
        better = self.best is None or (value < self.best["value"] if VAL_METRICS[t.best_by] == "min"
                                       else value > self.best["value"])
        if better:
            self.best = {"by": t.best_by, "value": value, "step": self.step, "data": self.cfg.data.validation(),
                         "metrics": {k: v for k, v in metrics.items()}}
            self.save_generator(self.out / "best.pt", G, best=self.best)
        parts = [f"{s.label} {metrics[s.label + '_l1']:.4f}" for s in self.val_sets if s.label + "_l1" in metrics]
        note = (f"step {self.step}: validation ({metrics['count']} outputs scored): L1 {metrics['l1']:.4f}"
                + (f" ({', '.join(parts)})" if parts else "")
                + f", PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.4f} ({seconds:.1f} s)"
                + (f"; best {t.best_by} so far, best.pt written" if better else
                   f"; best {t.best_by} {self.best['value']:.4g} at step {self.best['step']}"))
        if self._bar is not None and not self._bar.disable:
            self._bar.write(note, file=sys.stderr)
            self._bar.set_postfix_str(self._postfix())         # the new best at once, not a step later
        else:                                              # --no-progress: the line alone
            print(note, file=sys.stderr)
        return metrics

    # -- outputs -------------------------------------------------------------
    def _limit_s(self) -> float | None:
        return self.cfg.train.time_limit * 60 if self.cfg.train.time_limit else None

    def _advance(self, bar, session_steps: int, session_seconds: float) -> None:
        """One step on the progress bar: the steps the run will do (re-estimated under --time-limit),
        the epoch of those it will do, the smoothed losses."""
        planned, estimate = self._plan = monitor.planned_steps(self.step, self.total_steps, self._limit_s(),
                                                               self.elapsed, session_steps, session_seconds)
        if planned != bar.total:
            bar.total = planned
        bar.set_description_str(monitor.epochs_label(self.step, planned, self.steps_per_epoch, estimate),
                                refresh=False)
        bar.set_postfix_str(self._postfix(), refresh=False)
        bar.update()

    def eval_generator(self) -> torch.nn.Module:
        """The generator for samples and model.pt: the weight EMA when kept, prepared by the model family."""
        return self.model.prepare_eval(self.g_ema.model if self.g_ema is not None else self.G)

    @torch.no_grad()
    def sample(self) -> Path:
        """Write the sample grid for the current step (fixed inputs, so grids compare over time)."""
        G = self.eval_generator()
        batch = self._to_device(self.preview_batch())
        fake = self.model.generate(batch, G=G)
        rows = self.model.display(batch, fake)
        name = f"step_{self.step:07d}.png" if self.cfg.train.sample_every else \
            f"epoch_{math.ceil(self.step / self.steps_per_epoch):03d}.png"
        path = self.out / "samples" / name
        if len(rows) == 1:
            grid = report.save_image_grid(rows[0], path)
        else:
            grid = report.save_rows_grid(rows, path)
        if self.tb is not None:
            self.tb.image("samples", grid, self.step)
        return path

    def preview_batch(self) -> dict:
        """The grid's inputs, read once (so that a file that breaks mid-run cannot change the rows)."""
        if self._preview is None:
            self._preview = self.model.preview_batch(self.dataset)
        return self._preview

    def plot(self, rows: list[dict] | None = None) -> None:
        rows = report.read_log(self.out / "log.jsonl") if rows is None else rows
        # G terms are missing from D-only steps (--d-steps > 1): look further back than the last row
        recent = report.loss_rows(rows)[-64:]
        keys = [k for k in self.family.loss_names + ("GP",) if any(k in r for r in recent)]
        report.loss_plot(rows, self.out / "losses.png", keys, title=f"{self.cfg.model.kind} losses ({self.out.name})",
                         axes=self.family.loss_axes(self.cfg), best_by=self.cfg.train.best_by,
                         validation=self.family.validation_label(self.cfg, self.val_sets) if self.val_sets else "")

    def write_page(self, rows: list[dict], state: str) -> Path:
        """RUN/index.html (see :mod:`img2img.runpage`)."""
        planned, estimate = self.step, False                 # a run that ended did what it did
        if state == "training":
            planned, estimate = self._plan
        spe = self.steps_per_epoch
        of = "~?" if planned is None else f"{'~' if estimate else ''}{math.ceil(planned / spe)}"
        epochs = f"epoch {math.ceil(self.step / spe)} of {of} ({spe} steps each)"
        val = ""
        if self.val_sets:
            val = f"{self.family.validation_label(self.cfg, self.val_sets)} ({self.cfg.data.validation()})"
        return runpage.write(self.out, self.cfg, rows, {
            "step": self.step, "planned": "~?" if planned is None else f"{'~' if estimate else ''}{planned}",
            "epochs": epochs,
            "elapsed": self.elapsed, "state": state, "validation": val})

    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "g_ema": self.g_ema.state_dict() if self.g_ema is not None else None,
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                "family": self.model.state_dict(),
                "meters": self.meters.state_dict(), "step": self.step, "elapsed": self.elapsed,
                "bad_files": sorted(self.bad_files), "best": self.best, "rng": rng}

    def _load_state(self, s: dict) -> None:
        self.G.load_state_dict(s["G"])
        self.D.load_state_dict(s["D"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        if self.g_ema is not None and s.get("g_ema"):
            self.g_ema.load_state_dict(s["g_ema"])
        if self.scaler.is_enabled() and s.get("scaler"):
            self.scaler.load_state_dict(s["scaler"])
        self.model.load_state_dict(s.get("family") or {})
        self.meters.load_state_dict(s["meters"])
        self.step, self.elapsed = int(s["step"]), float(s["elapsed"])
        self.bad_files = set(s.get("bad_files", []))
        best = s.get("best")
        if best and (best.get("by") != self.cfg.train.best_by or best.get("data") != self.cfg.data.validation()):
            if self.main:
                print(f"note: the validation data changed since the best pass (step {best.get('step')}, "
                      f"{best.get('data')}); best.pt will be replaced by the next pass", file=sys.stderr)
            best = None
        self.best = best
        torch.set_rng_state(s["rng"]["torch"])
        random.setstate(_as_tuple(s["rng"]["python"]))
        if "cuda" in s["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(s["rng"]["cuda"])

    def save(self) -> Path:
        path = self.out / "latest.pt"
        try:
            save_checkpoint(path, self.cfg.to_dict(), self.state_dict())
        except ValueError as e:
            raise TrainingError(str(e)) from None
        return path

    def save_model(self) -> Path:
        """model.pt: the (EMA) generator and the config, for translate and export."""
        return self.save_generator(self.out / "model.pt")

    def save_generator(self, path: Path, G: torch.nn.Module | None = None, **extra) -> Path:
        """A generator-only checkpoint like model.pt (best.pt, snapshots/epoch_NNN.pt): the eval
        generator (or ``G``), the step and ``extra``, with the config, written atomically."""
        G = self.eval_generator() if G is None else G
        state = {"G": {k: v.contiguous() for k, v in G.state_dict().items()}, "step": self.step, **extra}
        try:
            save_checkpoint(path, self.cfg.to_dict(), state)
        except ValueError as e:
            raise TrainingError(str(e)) from None
        return path

    # -- plumbing ------------------------------------------------------------
    def _loader(self, epoch: int, first: int, count: int):
        bs = self.cfg.train.batch_size
        order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(
            self.cfg.train.seed * 1_000_003 + epoch)).tolist()
        gb = self.global_batch
        order = order[first * gb:(first + count) * gb][self.rank::self.world]   # this rank's shard
        if hasattr(self.dataset, "epoch"):
            self.dataset.epoch = epoch
        from ..data import collate
        return DataLoader(self.dataset, batch_size=bs, sampler=order, collate_fn=collate,
                          num_workers=self.cfg.data.workers, drop_last=self.drop_last,
                          generator=torch.Generator().manual_seed(epoch),
                          pin_memory=self.device.type == "cuda")

    def _to_device(self, batch: dict) -> dict:
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor):
                v = v.to(self.device, non_blocking=True)
                if self.channels_last and v.dim() == 4:
                    v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
        return out

    def _set_lr(self) -> float:
        t = self.cfg.train
        f = lr_factor(self.progress(), t.epochs, t.epochs_decay)
        for g in self.opt_g.param_groups:
            g["lr"] = t.lr * f
        for g in self.opt_d.param_groups:
            g["lr"] = (t.lr_d or t.lr) * f
        return t.lr * f

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def instance_noise_std(self) -> float:
        """The std of the instance noise at this point of the run: --instance-noise, falling
        linearly to 0 over the schedule (:meth:`progress`)."""
        return self.cfg.train.instance_noise * (1.0 - self.progress())

    def progress(self) -> float:
        """Fraction of the schedule done: by epochs, or by --time-limit, whichever is further.
        (--max-steps only stops the run; it does not change the schedule, so a run cut short
        that way and resumed matches an uninterrupted one.)"""
        p = self.step / self.schedule_steps
        if self.cfg.train.time_limit:
            p = max(p, self.elapsed / (self.cfg.train.time_limit * 60))
        return min(1.0, p)

    def _postfix(self) -> str:
        s = self.meters.smoothed()
        text = " ".join(f"{k}={s[k]:.3f}" for k in self.family.loss_names if k in s)
        if self.best is not None:
            text += f" | best val_{self.best['by']}={self.best['value']:.4g}@{self.best['step']}"
        return text

    def _report_bad(self, errors: list[str], bar) -> None:
        for e in errors:
            if e not in self.bad_files:
                self.bad_files.add(e)
                bar.write(printable(f"warning: {e}; skipped"), file=sys.stderr)

    def _truncate_log(self) -> None:
        """On resume, drop log lines written after the checkpoint being resumed from."""
        path = self.out / "log.jsonl"
        if not path.exists():
            return
        rows = [r for r in report.read_log(path) if r.get("step", 0) <= self.step]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))

    def _print_header(self) -> None:
        n_g = sum(p.numel() for p in self.G.parameters())
        n_d = sum(p.numel() for p in self.D.parameters())
        desc = self.dataset.describe() if hasattr(self.dataset, "describe") else f"{len(self.dataset)} items"
        verb = "resuming at" if self.step else "starting at"
        print(printable(f"img2img {self.cfg.model.kind}: {desc}; G {n_g / 1e6:.2f}M, D {n_d / 1e6:.2f}M parameters; "
                        f"device {self.device}; {self.steps_per_epoch} steps/epoch, {self.total_steps} steps; "
                        f"{verb} step {self.step}; run folder {self.out}"), file=sys.stderr)
        if self.device.type == "cpu":
            first = next((m for m in self.G.modules() if isinstance(m, torch.nn.Conv2d)), None)
            if first is not None:
                c = self.cfg
                line = smallconv.prepare(self.G, (c.train.batch_size, first.in_channels, c.data.crop_size,
                                                  c.data.crop_size))
                if line:
                    print(printable(line), file=sys.stderr)
        if self.val_sets:
            t = self.cfg.train
            every = f"every {t.val_every} steps" if t.val_every else "after every epoch"
            print(f"validation: {self.family.validation_label(self.cfg, self.val_sets)} "
                  f"({self.cfg.data.validation()}), {every}; best.pt by {t.best_by}", file=sys.stderr)
            skipped = list(dict.fromkeys(m for s in self.val_sets for m in s.skipped))
            if skipped:
                print(f"warning: validation leaves {len(skipped)} bad file(s) out, the first: {skipped[0]}",
                      file=sys.stderr)

    def _install_sigint(self):
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum, frame):
            if self._stop.is_set():
                raise KeyboardInterrupt
            self.stop_reason = "interrupted (Ctrl-C); checkpoint written, continue with --resume"
            self._stop.set()

        old = signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, old)


def _networks(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The networks in ``module``: itself, or the members of a ModuleDict / ModuleList (e.g. two generators)."""
    if isinstance(module, torch.nn.ModuleDict):
        return list(module.values())
    if isinstance(module, torch.nn.ModuleList):
        return list(module)
    return [module]


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def train(config: RunConfig | None = None, *, resume: bool = False, dataset=None, **settings) -> Path:
    """Train a model and return its run folder.

    ``settings`` are flat :mod:`img2img.config` field names, e.g.
    ``train(pairs="data/facades", out="runs/facades", direction="BtoA", epochs=5)``.
    With ``resume=True`` the run in ``out`` continues from its latest.pt; only
    training-length and runtime settings (``RESUMABLE``) may change then.
    The CLI's spellings work too: ``model=`` for ``kind``, ``size=`` for ``image_size``.

    The run folder is locked while the run lasts (:func:`img2img.files.folder_lock`): a second
    training on the same folder is refused in one line naming the holder.
    """
    settings = families.canonical_settings(settings)
    if resume:
        out = settings.get("out") or (config.train.out if config is not None else None)
        if not out:
            raise ConfigError("--resume needs the run folder (--out RUN or --resume RUN)")
        if not Path(out).is_dir():
            raise ConfigError(f"{Path(out) / 'latest.pt'}: nothing to resume (no checkpoint in {out})")
        with _run_lock(out):
            trainer = _resumed(Path(out), settings, dataset)
            return trainer.fit()
    cfg = families.check(families.make_config(config, **settings))
    check_run_folder(cfg)
    out = Path(cfg.train.out)
    with _run_lock(out):
        if (out / "latest.pt").exists():
            raise ConfigError(f"{out} already holds a run (latest.pt); continue it with --resume or choose another --out")
        return Trainer(cfg, dataset=dataset).fit()


def _resumed(out: Path, settings: dict, dataset) -> "Trainer":
    """The Trainer that continues the run in ``out`` (whose lock is held)."""
    path = out / "latest.pt"
    if not path.exists():
        raise ConfigError(f"{path}: nothing to resume (no checkpoint in {out})")
    ckpt = load_checkpoint(path)
    base = families.stored_config(ckpt, path)
    missing = sorted({"G", "D", "opt_g", "opt_d", "meters", "step", "elapsed", "rng"} - set(ckpt["state"]))
    if missing:
        raise CheckpointError(f"{path}: holds no full training state (missing {', '.join(missing)}); "
                              "--resume needs the latest.pt written by img2img train, not a model.pt")
    for which in ("G", "D"):                  # compared on the meta device, before building the networks
        problem = families.weights_problem(base, ckpt["state"][which], which)
        if problem:
            raise CheckpointError(f"{path}: its training state does not fit the stored configuration ({problem})")
    fixed = sorted(k for k, v in settings.items() if k not in RESUMABLE and k != "out"
                   and getattr(getattr(base, field_section(k)), k) != v)
    if fixed:
        raise ConfigError(f"--resume continues {out} with the settings stored in its checkpoint; "
                          f"these cannot change: {', '.join('--' + k.replace('_', '-') for k in fixed)}")
    _check_config_edits(out / "config.json", base, path, given=set(settings))
    cfg = families.make_config(base, **{k: v for k, v in settings.items() if k in RESUMABLE})
    cfg.train.out = str(out)
    check_run_folder(families.check(cfg))
    return Trainer(cfg, dataset=dataset, checkpoint=ckpt)


def _check_config_edits(path: Path, base: RunConfig, checkpoint: Path, given: set[str]) -> None:
    """A resumed run takes its settings from the checkpoint and rewrites config.json from them, so a
    hand edit of config.json would be undone without a word.  Refuse edits of settings that cannot
    change on resume; for resumable ones not set on the command line, say how to set them."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror}); fix or delete it (the checkpoint holds the "
                          "settings; resume rewrites config.json from them)") from None
    try:
        stored = json.loads(text)
        if not isinstance(stored, dict) or not all(isinstance(v, dict) for v in stored.values()):
            raise ValueError("not an object of model, data and train sections")
    except ValueError as e:
        raise ConfigError(f"{path}: does not parse ({printable(str(e).splitlines()[0])}); fix or delete it (the "
                          "checkpoint holds the settings; resume rewrites config.json from them)") from None
    ours = json.loads(json.dumps(base.to_dict()))          # as JSON has it (tuples as lists)
    edits = [(k, v, ours[section][k]) for section, values in stored.items() if section in ours
             for k, v in values.items() if k in ours[section] and k != "out" and v != ours[section][k]]
    fixed = [e for e in edits if e[0] not in RESUMABLE]
    name = checkpoint.name
    if fixed:
        said = ", ".join(f"{k} is {v!r} there but {was!r} in {name}" for k, v, was in fixed)
        raise ConfigError(f"{path}: edited by hand ({said}); a resumed run keeps the model and data settings of "
                          "its checkpoint and rewrites config.json from them: undo the edit, or start a new run "
                          "with --out")
    notes = [(k, v, was) for k, v, was in edits if k not in given]
    if notes and distributed.env_rank() == 0:
        said = ", ".join(f"{k} {v!r} where {name} has {was!r}" for k, v, was in notes)
        flags = " ".join(_flag(k, v) for k, v, _ in notes)
        print(printable(f"note: {path} sets {said}; resume uses {name}'s values and rewrites config.json; "
                        f"to change them pass {flags}"), file=sys.stderr)


def _flag(name: str, value) -> str:
    """The command-line spelling of setting ``name`` = ``value`` (as the note above suggests it)."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {value}"


def check_run_folder(cfg: RunConfig) -> None:
    """Refuse a run folder that would write into the training data: --out equal to or inside
    --pairs/--images, or the data inside the folder the sample grids go to (symbolic links resolved)."""
    out = Path(cfg.train.out)
    for source in DATA_SOURCES:
        data = getattr(cfg.data, source)
        if data is None or not Path(data).exists():
            continue
        if Path(data).is_dir() and within(out, data):
            raise ConfigError(f"--out {out} is {'the' if Path(out).resolve() == Path(data).resolve() else 'inside the'} "
                              f"training data folder --{source} {data}; the run would write its files (and sample "
                              "grids) among the data it trains on; choose an --out outside it")
        if within(data, out / "samples"):
            raise ConfigError(f"--{source} {data} is inside {out / 'samples'}, where the run writes its sample "
                              "grids; choose another --out")


@contextlib.contextmanager
def _run_lock(out: str | Path):
    """The run folder's lock, taken by rank 0 only (the one process that writes; other ranks of a
    torchrun job share the run).  A busy folder is a ConfigError naming the holder."""
    if distributed.env_rank() != 0:
        yield
        return
    held = contextlib.ExitStack()
    try:                      # only the taking of the lock: errors of the training itself pass through
        held.enter_context(folder_lock(out))
    except FolderBusy as e:
        raise ConfigError(f"{e.folder} is in use by another training ({e.holder or 'pid unknown'}); "
                          "wait for it to finish, or choose another --out") from None
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        why = "is on a read-only file system" if e.errno == errno.EROFS else "is not writable by you"
        if (Path(out) / "latest.pt").exists():
            raise ConfigError(f"{out}: the run folder {why} ({e.filename or out}: {e.strerror}), so training "
                              "cannot continue there; translate, eval and export read from it as it is; to train on, "
                              f"copy it (cp -r {out} NEW) and run train --resume NEW") from None
        raise ConfigError(f"{out}: the run folder {why} ({e.filename or out}: {e.strerror}); "
                          "choose another --out") from None
    with held:
        yield


def _fast_adam() -> dict:
    """The fused Adam kernel where this torch has it (one pass over the weights: ~7x faster
    than the foreach path on the CPU here, measured by tools/bench.py), else foreach."""
    try:
        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], fused=True)
        return {"fused": True}
    except (RuntimeError, TypeError):
        return {"foreach": True}
