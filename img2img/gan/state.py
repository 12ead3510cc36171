"""A training run's state: what latest.pt holds, saving it, and taking it back on resume.

:class:`TrainingState` is the part of :class:`img2img.gan.trainer.Trainer` that reads and writes
checkpoints: :meth:`~TrainingState.state_dict` (weights of G and D, both optimizers, the weight
EMA, the AMP scaler, the family's own state, loss meters, step, elapsed time, skipped files,
the best validation pass, every random generator), its inverse, ``latest.pt`` / ``model.pt`` /
generator-only checkpoints, and the log cut back to the checkpoint on resume.  Together they
make a killed and resumed run equal an uninterrupted one, bit for bit on the CPU.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import torch

from .. import report
from ..checkpoint import save_checkpoint
from ..files import atomic_write_text


class TrainingError(RuntimeError):
    """Training had to stop (non-finite loss, unwritable run folder...): one-line message."""


class TrainingState:
    """Checkpointing for the Trainer (a mixin: it uses the trainer's G, D, optimizers, ...)."""

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

    def _truncate_log(self) -> None:
        """On resume, drop log lines written after the checkpoint being resumed from."""
        path = self.out / "log.jsonl"
        if not path.exists():
            return
        rows = [r for r in report.read_log(path) if r.get("step", 0) <= self.step]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


__all__ = ["TrainingError", "TrainingState"]
