"""Loading trained generators for use, and running them with PyTorch or ONNX Runtime.

* :func:`load_generator` -- (generator in eval mode, its RunConfig) from a run
  folder, ``model.pt`` or ``latest.pt``: the config stored in the checkpoint
  rebuilds the network, so no architecture flags are needed.
* :class:`TorchBackend` / :class:`OnnxBackend` -- the same call,
  ``(N, C, h, w)`` float32 in -> float32 out, for a torch module (an
  ``inference_module`` of a family) or an ``.onnx`` file from ``img2img export``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from . import families, onnxrt
from .checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint
from .config import DIRECTIONS, RunConfig
from .files import first_line


def load_generator(path, device: str | torch.device = "cpu") -> tuple[nn.Module, RunConfig]:
    """(generator in eval mode, its RunConfig) from a run folder, model.pt or latest.pt.

    Prefers the EMA weights when the run kept them.  The family prepares the loaded
    network (e.g. measures BatchNorm statistics of an unconditional G from a training state).
    """
    p = resolve_checkpoint(path)
    if p.is_file() and p.name == "latest.pt" and (p.parent / "model.pt").is_file() \
            and (p.parent / "model.pt").stat().st_mtime >= p.stat().st_mtime:
        p = p.parent / "model.pt"               # smaller, and the same generator
    ckpt = load_checkpoint(p, map_location="cpu")
    cfg = families.stored_config(ckpt, p)
    fam = families.get(cfg.model.kind)
    state = ckpt["state"]
    ema = state.get("g_ema")
    weights = (ema.get("model") if isinstance(ema, dict) else None) or state.get("G")
    if not isinstance(weights, dict):
        raise CheckpointError(f"{p}: holds no generator weights")
    problem = families.weights_problem(cfg, weights, "G")      # before building anything real
    if problem:
        raise CheckpointError(f"{p}: generator weights do not fit the stored config ({problem})")
    try:
        G = fam.build_generator(cfg)
        G.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
        detail = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]
        raise CheckpointError(f"{p}: generator weights do not fit the stored config ({detail[:200]})") from None
    return fam.loaded(G.to(device).eval(), cfg, state), cfg


class TorchBackend:
    """A torch module run without autograd on one device."""
    name = "torch"

    def __init__(self, module: nn.Module, device: torch.device):
        self.module, self.device = module, device

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(x.to(self.device, non_blocking=True)).float()


class OnnxBackend:
    """An ``img2img export`` file run by ONNX Runtime; ``cfg`` is the RunConfig in its metadata."""
    name = "onnx"

    def __init__(self, path: Path, device: torch.device):
        self.session = onnxrt.session(path, device)
        self.path = path
        self.device = torch.device("cpu")
        meta = self.session.get_modelmeta().custom_metadata_map
        self.cfg = onnxrt.stored_config(meta, path)
        inputs = self.session.get_inputs()
        fam = families.get(self.cfg.model.kind)
        want = 4 if fam.conditional else 2          # (N, 3, H, W) images, or (N, z_dim) noise
        if len(inputs) != 1 or len(inputs[0].shape) != want:
            raise CheckpointError(f"{path}: its graph does not take the input its stored config describes "
                                  f"(one {want}-d tensor); re-export it with `img2img export`")
        self.input = inputs[0].name
        self.direction = meta.get("direction", "")          # the generator this file holds (CycleGAN)
        if self.direction not in ("", *DIRECTIONS):
            raise CheckpointError(f"{path}: the direction stored in this ONNX file is invalid "
                                  f"({self.direction[:40]!r}; AtoB or BtoA)")
        self.metadata = dict(meta)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        try:
            out = self.session.run(None, {self.input: arr})[0]
        except Exception as e:  # noqa: BLE001 - a graph that does not match its metadata fails here
            raise CheckpointError(f"{self.path}: ONNX Runtime failed on an input of shape {tuple(arr.shape)} "
                                  f"({first_line(e)}); does the file match its stored config?") from None
        return torch.from_numpy(out)


