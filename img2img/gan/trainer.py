"""The one training loop for every GAN here (pix2pix, CycleGAN, DCGAN, the MLP GAN).

Each iteration takes one batch and makes one discriminator update; every
``d_steps``-th iteration is followed by a generator update (Algorithm 1 of
the GAN paper with k = d_steps).  What G is fed, what D sees, the extra
generator terms, the sample grids and the data come from the model family
(:mod:`img2img.families`); this module never asks which family it trains.

Around the loop, in their own modules:

* :mod:`img2img.gan.launch` -- :func:`~img2img.gan.launch.train`: a new run or a resumed one,
  the run-folder lock and checks;
* :mod:`img2img.gan.state` -- latest.pt / model.pt / best.pt: the state saved and restored;
* :mod:`img2img.gan.outputs` -- the hooks that write everything else (log, grids, plot, run
  page, validation, TensorBoard, profiler, snapshots).

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

import functools
import math
import random
import signal
import sys
import threading
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import families
from ..checkpoint import CheckpointError
from ..config import RunConfig
from ..device import amp_dtype, resolve_device
from ..files import printable
from ..nets.patchgan import feature_matching
from . import distributed, monitor, objectives
from .ema import EMAMeters, WeightEMA
from .outputs import RunOutputs
from .state import TrainingError, TrainingState


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


class Trainer(TrainingState):
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
        self._outputs_at = -1                  # step at which end_of_epoch last wrote its outputs
        self._stop = threading.Event()
        self.stop_reason = ""
        # validation (rank 0 alone scores): the held-out data, decoded once; the best pass so far
        self.val_sets = self.family.validation_sets(cfg) if self.main else []
        self.best: dict | None = None
        self._validated_at = -1
        self.outputs = RunOutputs(self)        # grids, plot, page, validation, TensorBoard, profiler
        self._bar = None
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
                loss = objectives.per_scale(self.d_loss_fn, d_real, d_fake)
                if t.objective == "wgan-gp":
                    gp = objectives.gradient_penalty(D, real_in, fake_in)
                    loss = loss + t.gp_weight * gp
                    gps.append(gp.item())
                loss = loss * m.d_loss_scale
                logs[name] = loss.item()
                loss_d = loss_d + loss
                p_real.append(objectives.d_probability(objectives.detached(d_real), t.objective).item())
                p_fake.append(objectives.d_probability(objectives.detached(d_fake), t.objective).item())
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
                    adversarial = [(name, D, x + noise * torch.randn_like(x), *real) for name, D, x, *real in adversarial]
                gan, matched = {}, []
                for name, D, fake_in, *real in adversarial:
                    if real and m.lambda_feat > 0:       # feature matching (pix2pixHD): D's features on real as targets
                        feats = D.features(fake_in)
                        with torch.no_grad():
                            targets = D.features(real[0])
                        matched.append(feature_matching(feats, targets))
                        out = [f[-1] for f in feats] if isinstance(feats[0], list) else feats[-1]
                    else:
                        out = D(fake_in)
                    gan[name] = objectives.per_scale(self.g_loss_fn, out)
                if matched:
                    extra = {**extra, "G_feat": m.lambda_feat * sum(matched)}
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
        """Train to the end of the schedule (or --max-steps, --time-limit, Ctrl-C); return the run folder."""
        t, out = self.cfg.train, self.outputs
        if self.main:
            out.start()
        restore = self._install_sigint()
        start, base, first_step = time.monotonic(), self.elapsed, self.step
        planned, estimate = self._plan = monitor.planned_steps(self.step, self.total_steps, self._limit_s(),
                                                               self.elapsed, 0, 0.0)
        bar = self._bar = tqdm(total=planned, initial=self.step, unit="step", dynamic_ncols=True, file=sys.stderr,
                               desc=monitor.epochs_label(self.step, planned, self.steps_per_epoch, estimate),
                               disable=not (t.progress and self.main))
        try:
            with out.open_log():
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
                        out.step(epoch, lr, logs)
                        self.meters.update(logs)
                        self._advance(bar, self.step - first_step, time.monotonic() - start)
                        if self.main and t.sample_every and self.step % t.sample_every == 0:
                            out.sample()
                        epoch_end = self.step % self.steps_per_epoch == 0 or self.step >= self.total_steps
                        if self.main and t.save_every and self.step % t.save_every == 0 and not epoch_end:
                            self.save()        # (an epoch's end saves in end_of_epoch, after the epoch's grid)
                        if self.val_sets and t.val_every and self.step % t.val_every == 0:
                            out.validate()
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
            self._bar = None
            out.close()
        if self.main:
            out.finish()
        return self.out

    def end_of_epoch(self, final: bool = False) -> None:
        """An epoch's (or the run's) end: the outputs (:meth:`RunOutputs.epoch_end`: validation, grid,
        snapshot, plot, page), then latest.pt: the checkpoint marks them done, so a kill before it
        makes a resumed run write them again (never a checkpoint without its grid)."""
        self._outputs_at = self.step
        if not self.main:
            return
        self.outputs.epoch_end(final)
        self.save()

    # -- progress ------------------------------------------------------------
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


def _fast_adam() -> dict:
    """The fused Adam kernel where this torch has it (one pass over the weights: ~7x faster
    than the foreach path on the CPU here, measured by tools/bench.py), else foreach."""
    try:
        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], fused=True)
        return {"fused": True}
    except (RuntimeError, TypeError):
        return {"foreach": True}
