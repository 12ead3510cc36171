"""Scoring a generator on held-out images: the one scoring code of ``img2img eval`` and of
validation while training.

* :func:`score` -- translate inputs, resize output and target to the model's size, compare
  (:func:`img2img.metrics.pair_metrics`).
* :func:`chain` -- translators applied in turn (a CycleGAN cycle).
* :func:`validate` -- a generator held in memory on :class:`~img2img.data.holdout.HeldOut` sets,
  exactly as ``img2img eval`` scores a saved one (the trainer's validation pass).

Above the translate pipeline (it translates as ``translate`` does), below the trainer and
:mod:`img2img.evaluation` (files, the HTML report).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from . import color as colorlib
from . import families
from .color import to_float
from .config import RunConfig
from .data.holdout import HeldOut
from .data.io import DataError
from .inference import TorchBackend
from .metrics import METRICS, pair_metrics
from .translate import Translator, resize_rgb


def score(run: Callable[[list[torch.Tensor]], list[torch.Tensor]], inputs: list[torch.Tensor],
          targets: list[torch.Tensor], size: int, gray_target: bool = False) -> list[dict]:
    """Translate ``inputs`` with ``run`` and compare each output with its target: the one scoring
    code of ``img2img eval`` and of validation while training.

    ``inputs`` and ``targets`` are RGB (or gray) (C, H, W) in [0, 1], any sizes; ``run`` maps the
    inputs to outputs of their sizes (:meth:`Translator.translate_tensors`).  Output and target
    are resized to ``size``² and compared as RGB (the target's gray version with ``gray_target``).
    Returns, per item, the three images at ``size``² (``"input"``, ``"output"``, ``"target"``)
    and :func:`pair_metrics`.
    """
    outputs = run(inputs)
    entries = []
    for x, y, t in zip(inputs, outputs, targets):
        t = t.expand(3, -1, -1) if t.shape[0] == 1 else t
        if gray_target:
            t = colorlib.rgb_to_gray(t).expand(3, -1, -1)
        x = x.expand(3, -1, -1) if x.shape[0] == 1 else x
        images = {k: resize_rgb(v, (size, size)) for k, v in (("input", x), ("output", y), ("target", t))}
        entries.append({**images, **pair_metrics(images["output"], images["target"])})
    return entries


def chain(translators: list[Translator]) -> Callable[[list[torch.Tensor]], list[torch.Tensor]]:
    """The translators applied in turn (one for pix2pix; a CycleGAN cycle runs two)."""
    def run(images: list[torch.Tensor]) -> list[torch.Tensor]:
        for tr in translators:
            images = tr.translate_tensors(images)
        return images
    return run


@torch.no_grad()
def validate(G: torch.nn.Module, cfg: RunConfig, sets: list[HeldOut], device: torch.device,
             batch_size: int = 8) -> dict[str, float]:
    """Score a generator held in memory (the trainer's eval generator) on held-out data, exactly as
    ``img2img eval`` scores a saved one: each set's inputs go through the generators of its
    ``directions`` (``resize`` policy) and are compared with its targets by :func:`score`.

    Returns the means over all items, ``l1``, ``psnr``, ``ssim``, and ``count``; with more than one
    set also each set's means as ``LABEL_l1`` ... (CycleGAN: ``A_l1`` for A -> B -> A).
    """
    fam = families.get(cfg.model.kind)
    translators: dict[str, Translator] = {}
    for d in {d for s in sets for d in s.directions}:
        module = fam.inference_module(G, cfg, d)
        translators[d] = Translator(TorchBackend(module, device), cfg, batch_size=batch_size, direction=d)
    results: dict[str, float] = {}
    every: list[dict] = []
    for s in sets:
        run = chain([translators[d] for d in s.directions])
        entries: list[dict] = []
        for start in range(0, len(s), batch_size):
            items = []
            for i in range(start, min(len(s), start + batch_size)):
                try:
                    items.append(s.read(i))
                except DataError:
                    continue                          # a file gone bad since it was checked: left out
            if items:
                entries += score(run, [to_float(a) for a, _ in items], [to_float(b) for _, b in items],
                                 cfg.model.image_size, s.gray_target)
        if len(sets) > 1 and entries:
            results.update({f"{s.label}_{k}": float(np.mean([e[k] for e in entries])) for k in METRICS})
        every += entries
    if not every:
        raise DataError("validation: no held-out image could be read")
    return {**{k: float(np.mean([e[k] for e in every])) for k in METRICS}, "count": len(every), **results}


__all__ = ["chain", "score", "validate"]
