"""Using a trained generator: the :class:`Translator` and folder translation.

A :class:`Translator` wraps one generator behind an RGB-in / RGB-out function
and runs it with PyTorch (a run folder, ``model.pt`` or ``latest.pt``) or with
ONNX Runtime (a ``.onnx`` file from :func:`img2img.export_onnx`)::

    from img2img import Translator
    tr = Translator.load("runs/sil")                  # or "model.onnx"
    out = tr(Image.open("outline.png"))                # PIL in -> PIL out, same size
    outs = tr(torch.rand(8, 3, 300, 200))              # (N, 3, H, W) in [0, 1] -> same shape

Any input size gives an output of the input's size, under one of two policies:

* ``resize`` (default): the image is resized (bicubic, antialiased) to the
  model's training size ``image_size``², translated, and resized back.
  Non-square images are stretched to the square, as pix2pix training does.
* ``pad`` (alias ``native``): the image is run at its own resolution, padded
  (edge pixels repeated, bottom and right) to a multiple of 2^depth and
  cropped back.  Sharper on large images; costs memory in proportion to the
  image area.

Inference behaviour of BatchNorm and dropout
--------------------------------------------
pix2pix trains with batch size 1, so its BatchNorm layers normalise every
image by its own statistics; the paper runs the generator at test time the
same way.  The U-Net's :class:`img2img.nets.BatchNorm2d` therefore uses
*per-sample* statistics in eval mode (instance normalisation with the learned
scale and shift), never the batch's: an image gives the same output alone or
inside a batch of 8, and the batch size only changes speed.  The running
averages collected during training are not used.  The ONNX export computes
the same thing (``InstanceNormalization``).

Dropout is **off** by default, so translation is deterministic.  The paper
keeps dropout on at test time as the generator's only source of noise;
``dropout_noise=True`` (CLI ``--dropout-noise``) does that (seeded with
``seed``; outputs then vary from run to run and with batch composition).  The
ONNX export always has dropout off.

Colorization models (L -> ab) are fed the L channel of the input and their
ab prediction is recombined with the input's *full-resolution* L, so the
output keeps the input's detail even under the ``resize`` policy.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import color as colorlib
from . import families
from .checkpoint import CheckpointError
from .color import to_float, to_uint8
from .config import MAX_BATCH, MAX_WORKERS, POLICY_ALIASES, ConfigError, RunConfig, check_int, check_seed
from .device import resolve_device
from .families.wrappers import pad_to_multiple, set_dropout
from .inference import OnnxBackend, TorchBackend, load_generator


# -- pre- and post-processing (pure functions, also run in DataLoader workers) ---------------
def resize_rgb(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) or (N, C, H, W) float -> size (h, w); bicubic, antialiased, clamped to [0, 1]."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    batched = x.dim() == 4
    y = F.interpolate(x if batched else x[None], size=size, mode="bicubic", align_corners=False,
                      antialias=True).clamp_(0.0, 1.0)
    return y if batched else y[0]


def prepare_input(rgb: torch.Tensor, policy: str, size: int, multiple: int) -> torch.Tensor:
    """(3, H, W) RGB in [0, 1] -> the network's input: size² (``resize``) or padded to ``multiple`` (``pad``)."""
    if policy == "resize":
        return resize_rgb(rgb, (size, size))
    return pad_to_multiple(rgb[None], multiple)[0]


# -- the Translator --------------------------------------------------------------------------
class Translator:
    """A loaded generator that turns images into images of the same size (see the module docs).

    Call it on a PIL image (-> PIL image), a list of PIL images (-> list), a
    uint8 (H, W, 3) array (-> array), or a tensor (3, H, W) / (N, 3, H, W)
    in [0, 1] (-> float tensor of the same shape).  Gray inputs are repeated
    to RGB.  ``batch_size`` images go through the network at once.
    """

    def __init__(self, backend, cfg: RunConfig, *, policy: str = "resize", batch_size: int = 8,
                 source: str = "", dropout_noise: bool = False, direction: str | None = None):
        fam = families.get(cfg.model.kind)
        self.direction = families.pick_direction(cfg, direction, source)
        check_inference_options(policy=policy, batch_size=batch_size)
        self.backend, self.cfg, self.family = backend, cfg, fam
        self.policy = POLICY_ALIASES[policy]
        self.batch_size = batch_size
        self.source = source
        self.dropout_noise = dropout_noise

    # -- loading --------------------------------------------------------------
    @classmethod
    def load(cls, model: str | Path, *, device: str = "auto", policy: str = "resize", batch_size: int = 8,
             dropout_noise: bool = False, seed: int | None = None, direction: str | None = None) -> "Translator":
        """From a run folder, ``model.pt`` / ``latest.pt``, or a ``.onnx`` file from ``img2img export``.

        ``direction`` picks the generator of a model that translates both ways (CycleGAN:
        ``"AtoB"``, the default, or ``"BtoA"``); a pix2pix model translates its training direction only.
        """
        path = Path(model)
        check_inference_options(policy=policy, batch_size=batch_size, seed=seed)     # before loading anything
        dev = resolve_device(device)
        if path.suffix.lower() == ".onnx":
            if not path.is_file():
                raise CheckpointError(f"{path}: no such ONNX file")
            if dropout_noise:
                raise ConfigError("--dropout-noise needs the PyTorch model: ONNX exports have dropout off")
            backend = OnnxBackend(path, dev)
            if direction is not None and backend.direction and direction != backend.direction:
                raise ConfigError(f"{path}: this ONNX file translates {backend.direction} only (export the "
                                  f"model again with --direction {direction})")
            return cls(backend, backend.cfg, policy=policy, batch_size=batch_size, source=str(path),
                       direction=direction or backend.direction or None)
        G, cfg = load_generator(path, device=dev)
        fam = families.get(cfg.model.kind)
        direction = families.pick_direction(cfg, direction, str(path))
        if seed is not None:
            torch.manual_seed(seed)
        module = set_dropout(fam.inference_module(G, cfg, direction), dropout_noise)
        return cls(TorchBackend(module, dev), cfg, policy=policy, batch_size=batch_size,
                   source=str(path), dropout_noise=dropout_noise, direction=direction)

    # -- geometry -------------------------------------------------------------
    @property
    def size(self) -> int:
        """The model's training size (``resize`` policy runs at size x size)."""
        return self.cfg.model.image_size

    @property
    def multiple(self) -> int:
        """Network inputs must be multiples of this (2^depth for the U-Net)."""
        return self.family.size_multiple(self.cfg)

    @property
    def device(self) -> torch.device:
        return self.backend.device

    def describe(self) -> str:
        m, d = self.cfg.model, self.cfg.data
        what = "colorization (L -> ab)" if d.colorization else f"{m.input_nc}->{m.output_nc} channels, {d.color}"
        return (f"{self.backend.name} model {self.source}: {m.kind} {what}, trained at {m.image_size}px, "
                f"direction {self.direction}; policy {self.policy}; device {self.device}"
                + ("; dropout noise ON" if self.dropout_noise else ""))

    @property
    def preparer(self):
        """A picklable ``(3, H, W) -> network input`` function (for DataLoader workers)."""
        return partial(prepare_input, policy=self.policy, size=self.size, multiple=self.multiple)

    def needs_original(self) -> bool:
        """Whether :meth:`finish` needs the full-resolution input (colorization under ``resize``)."""
        return bool(self.cfg.data.colorization) and self.policy == "resize"

    # -- the steps --------------------------------------------------------------
    def run(self, batch: torch.Tensor) -> torch.Tensor:
        """Network inputs (N, 3, h, w) -> RGB outputs (N, 3, h, w) in [0, 1] on the CPU."""
        return self.backend(batch).cpu()

    def finish(self, out: torch.Tensor, size: tuple[int, int], original: torch.Tensor | None = None) -> torch.Tensor:
        """A network output (3, h, w) -> RGB (3, H, W) at the input's size ``(H, W)``.

        ``original`` (the input, (3, H, W) in [0, 1]) is needed for colorization
        under ``resize``: the predicted ab is upsampled and recombined with its L.
        """
        H, W = size
        if self.policy == "pad":
            return out[:, :H, :W]
        if self.cfg.data.colorization and original is not None and tuple(out.shape[-2:]) != (H, W):
            ab = colorlib.rgb_to_lab_net(out[None])[:, 1:]
            ab = F.interpolate(ab, size=(H, W), mode="bicubic", align_corners=False, antialias=True)
            L = colorlib.rgb_to_lab_net(original[None].float())[:, :1]
            return colorlib.merge_l_ab(L, ab)[0]
        return resize_rgb(out, (H, W))

    def translate_tensors(self, images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """RGB (3, H, W) tensors in [0, 1], any sizes -> translated tensors of the same sizes."""
        prepared = [self.preparer(_as_rgb(x)) for x in images]
        outs: list[torch.Tensor | None] = [None] * len(images)
        for idx, batch in shape_batches(prepared, self.batch_size):
            y = self.run(batch)
            for j, i in enumerate(idx):
                orig = _as_rgb(images[i]) if self.needs_original() else None
                outs[i] = self.finish(y[j], tuple(images[i].shape[-2:]), orig)
        return outs  # type: ignore[return-value]

    def __call__(self, images: Any) -> Any:
        from PIL import Image
        if isinstance(images, Image.Image):
            return self([images])[0]
        if isinstance(images, np.ndarray):
            arr = images[:, :, None] if images.ndim == 2 else images
            return to_uint8(self.translate_tensors([to_float(arr)])[0])
        if isinstance(images, torch.Tensor):
            x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
            if x.dim() == 3:
                return self.translate_tensors([x.cpu()])[0]
            if x.dim() == 4:
                return torch.stack(self.translate_tensors(list(x.cpu())))
            raise ValueError(f"expected a (3, H, W) or (N, 3, H, W) tensor, got shape {tuple(images.shape)}")
        if isinstance(images, (list, tuple)):
            if all(isinstance(im, Image.Image) for im in images):
                from .data.io import to_rgb
                xs = [to_float(np.asarray(to_rgb(im))) for im in images]
                return [Image.fromarray(to_uint8(y)) for y in self.translate_tensors(xs)]
            return [self(im) for im in images]
        raise TypeError(f"cannot translate a {type(images).__name__}; pass PIL images, arrays or tensors")


def check_inference_options(*, policy: str = "resize", batch_size: int = 8, workers: int | None = None,
                            seed: int | None = None) -> None:
    """The options of translate and eval, checked before anything is loaded; ConfigError in one line."""
    if policy not in POLICY_ALIASES:
        raise ConfigError(f"policy must be one of resize, pad (native), got {policy!r}")
    check_int("batch-size", batch_size, 1, MAX_BATCH)
    if workers is not None:
        check_int("workers", workers, 0, MAX_WORKERS)
    if seed is not None:
        check_seed(seed)


def _as_rgb(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected an image tensor (3, H, W) or (1, H, W), got shape {tuple(x.shape)}")
    return x.expand(3, -1, -1) if x.shape[0] == 1 else x


def shape_batches(items: Sequence[torch.Tensor], batch_size: int):
    """(indices, stacked tensor) for runs of equal-shaped items, at most ``batch_size`` each."""
    groups: dict[tuple, list[int]] = {}
    for i, x in enumerate(items):
        groups.setdefault(tuple(x.shape), []).append(i)
    for idx in groups.values():
        for k in range(0, len(idx), batch_size):
            chunk = idx[k:k + batch_size]
            yield chunk, torch.stack([items[i] for i in chunk])
