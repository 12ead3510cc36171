"""Watching a run: how long it will be, TensorBoard, and the profiler.

* :func:`planned_steps` -- the steps the run will have done when it stops (under
  ``--time-limit`` an estimate from the measured step rate), for the progress bar.
* :class:`TensorBoard` -- scalars and sample grids under RUN/tb (``--tensorboard``;
  the ``tensorboard`` package is an optional extra: ``pip install 'img2img[tb]'``).
* :class:`StepProfiler` -- ``--profile N``: N steps recorded with torch.profiler after
  a warm-up; a Chrome trace (chrome://tracing, https://ui.perfetto.dev) and a table of the
  operators that took the most time, under RUN/profile.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from ..config import ConfigError
from ..files import atomic_path, atomic_write_text

TB_MISSING = ("--tensorboard needs the tensorboard package, which is not installed: "
              "pip install 'img2img[tb]' (or pip install tensorboard)")


def planned_steps(step: int, total: int, limit_s: float | None, elapsed: float, session_steps: int,
                  session_seconds: float) -> tuple[int | None, bool]:
    """(steps the run will have done when it stops, whether that is an estimate: the time limit ends it).

    ``total`` is where the schedule or ``--max-steps`` stops it.  Under a time limit of
    ``limit_s`` seconds (``elapsed`` of them used), the steps still to come are the time left
    over the seconds per step measured in this session (``session_seconds`` over
    ``session_steps``, checkpoints, samples and validation included); until two steps are
    measured there is no estimate (None).
    """
    if not limit_s:
        return total, False
    if session_steps < 2 or session_seconds <= 0:
        return None, True                                    # not measured yet
    rate = session_steps / session_seconds
    left = max(0.0, limit_s - elapsed) * rate
    planned = max(step, min(total, step + math.ceil(left)))
    return planned, planned < total


def epochs_label(step: int, planned: int | None, steps_per_epoch: int, estimate: bool) -> str:
    """'epoch 3/13' (or 'epoch 3/~13' under a time limit, 'epoch 1/~?' before the first estimate):
    the epoch being trained of those the run will do."""
    if planned is None:
        return f"epoch {step // steps_per_epoch + 1}/~?"
    epoch = min(step // steps_per_epoch + 1, max(1, math.ceil(planned / steps_per_epoch)))
    return f"epoch {epoch}/{'~' if estimate else ''}{math.ceil(planned / steps_per_epoch)}"


def require_tensorboard() -> None:
    """ConfigError (one line) when torch's TensorBoard writer cannot be imported."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError(TB_MISSING) from None


class TensorBoard:
    """Scalars (``train/LOSS``, ``train/lr``, ``val/METRIC``) and images (``samples``) under ``folder``.

    ``purge_step``: on resume, events a killed run wrote after its checkpoint are dropped
    from the view (TensorBoard's own mechanism), as the trainer drops those log lines.
    """

    def __init__(self, folder: Path, purge_step: int | None = None):
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(str(folder), purge_step=purge_step or None, flush_secs=30)

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        for k, v in values.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        """``image``: (3, H, W) in [0, 1]."""
        self.writer.add_image(tag, image.clamp(0, 1), step, dataformats="CHW")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class StepProfiler:
    """Profile ``steps`` training steps after ``warmup`` unrecorded ones (counted from this session's
    first step): call :meth:`step` after every training step and :meth:`close` at the end.  A run
    that stops while recording writes what it recorded, and says so."""

    def __init__(self, steps: int, folder: Path, device: torch.device, warmup: int = 2, say=None):
        self.folder, self.steps, self.device, self.warmup = Path(folder), steps, device, warmup
        self.say = say or (lambda msg: print(msg, file=sys.stderr))
        self.written: list[Path] = []
        self.seen = self.recorded = 0
        self.prof = None
        self.open = True

    def _start(self) -> None:
        import os
        import warnings
        os.environ.setdefault("KINETO_LOG_LEVEL", "5")      # no "gpuGetDeviceCount failed" line on machines without one
        from torch.profiler import ProfilerActivity, profile, schedule
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.type == "cuda" else [])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                  # "won't be using warmup": our warm-up steps came before
            self.prof = profile(activities=activities, schedule=schedule(wait=0, warmup=0, active=self.steps, repeat=1),
                                on_trace_ready=self._ready, record_shapes=False)
        self.prof.start()

    def step(self) -> None:
        if not self.open:
            return
        self.seen += 1
        if self.prof is None:
            if self.seen >= self.warmup:
                self._start()                                # records the steps from the next one on
            return
        self.recorded += 1
        self.prof.step()                                     # the last one hands the trace to _ready
        if self.written:
            self.close()

    def close(self) -> None:
        if not self.open:
            return
        self.open = False
        if self.prof is None:
            self.say(f"--profile: the run stopped during the warm-up ({self.warmup} steps); no trace written")
            return
        self.prof.stop()                                     # mid-recording: writes the steps recorded so far

    def _ready(self, prof) -> None:
        trace = self.folder / "trace.json"
        with atomic_path(trace) as tmp:
            prof.export_chrome_trace(str(tmp))
        by = "self_cuda_time_total" if self.device.type == "cuda" else "self_cpu_time_total"
        table = prof.key_averages().table(sort_by=by, row_limit=20)
        short = "" if self.recorded >= self.steps else f" (the run stopped after {self.recorded} of {self.steps})"
        head = (f"img2img --profile: {self.recorded} training steps{short} on {self.device}, after {self.warmup} "
                f"warm-up steps; operators by {by} (trace: {trace}; open it in chrome://tracing or "
                "https://ui.perfetto.dev)\n")
        atomic_write_text(self.folder / "top_ops.txt", head + table + "\n")
        self.written = [trace, self.folder / "top_ops.txt"]
        self.say(head + table)
