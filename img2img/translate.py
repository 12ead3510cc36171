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

import json
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from . import color as colorlib
from .checkpoint import CheckpointError, atomic_path
from .config import ConfigError, RunConfig
from .data.io import IMAGE_EXTENSIONS, DataError, is_image, list_images, load_image
from .report import to_uint8

POLICIES = ("resize", "pad")
_POLICY_ALIASES = {"native": "pad", "resize": "resize", "pad": "pad"}
FORMATS = ("same", "png", "jpg", "webp", "bmp", "tif")
ONNX_CONFIG_KEY = "img2img_config"
WRITE_THREADS = 2


# -- the networks as RGB functions (shared by the torch backend and the ONNX export) --------
class RGBGenerator(nn.Module):
    """A pix2pix generator as a self-contained function: RGB in [0, 1] -> RGB in [0, 1].

    Applies what the model's config says about its input and output: gray
    conversion (1-channel models), RGB <-> scaled Lab (``color="lab"``), and
    for colorization L -> ab recombined with the input's L.
    (N, 3, H, W) float32 -> (N, 3, H, W); H and W multiples of 2^depth.
    """

    def __init__(self, G: nn.Module, cfg: RunConfig):
        super().__init__()
        self.G = G
        self.colorization = bool(cfg.data.colorization)
        self.color = cfg.data.color
        self.gray_in = cfg.model.input_nc == 1 and not self.colorization

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if self.colorization:
            L = colorlib.rgb_to_lab_net(rgb)[:, :1]
            return colorlib.merge_l_ab(L, self.G(L))
        x = colorlib.rgb_to_gray(rgb) if self.gray_in else rgb
        out = colorlib.decode(self.G(colorlib.encode(x, self.color)), self.color)
        return out.expand(-1, 3, -1, -1) if out.shape[1] == 1 else out


class NoiseGenerator(nn.Module):
    """An unconditional generator (DCGAN, MLP GAN): z (N, z_dim) -> RGB (N, 3, H, W) in [0, 1]."""

    def __init__(self, G: nn.Module, cfg: RunConfig):
        super().__init__()
        self.G = G
        self.sigmoid = cfg.model.kind == "mlp" and cfg.model.mlp_out == "sigmoid"
        self.color = cfg.data.color

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.G(z)
        if self.sigmoid:
            x = x * 2 - 1
        out = colorlib.decode(x, self.color)
        return out.expand(-1, 3, -1, -1) if out.shape[1] == 1 else out


def set_dropout(module: nn.Module, on: bool) -> nn.Module:
    """Dropout layers in training mode (the paper's test-time noise) or eval mode; nothing else changes."""
    for m in module.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.train(on)
    return module


# -- backends: (N, 3, h, w) float32 RGB on a device -> same, RGB in [0, 1] -----------------
class _TorchBackend:
    name = "torch"

    def __init__(self, module: nn.Module, device: torch.device):
        self.module, self.device = module, device

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(x.to(self.device, non_blocking=True)).float()


class _OnnxBackend:
    name = "onnx"

    def __init__(self, path: Path, device: torch.device):
        ort = _import_onnxruntime()
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ConfigError(f"--device {device}: this onnxruntime has no CUDA support "
                                  "(install onnxruntime-gpu, or use --device cpu)")
            providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise CheckpointError(f"{path}: not a loadable ONNX model ({_first_line(e)})") from None
        self.input = self.session.get_inputs()[0].name
        self.device = torch.device("cpu")
        meta = self.session.get_modelmeta().custom_metadata_map
        if ONNX_CONFIG_KEY not in meta:
            raise CheckpointError(f"{path}: not an img2img ONNX export (no {ONNX_CONFIG_KEY} metadata); "
                                  "export models with `img2img export`")
        self.cfg = RunConfig.from_dict(json.loads(meta[ONNX_CONFIG_KEY]))
        self.metadata = dict(meta)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input: arr})[0])


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("ONNX models need onnxruntime: pip install 'img2img[onnx]'") from None
    return onnxruntime


def default_workers(device: torch.device) -> int:
    """Decoding processes for translate/eval when none are asked for.  On the CPU the network
    already uses every core, so on small machines (<= 4 cores) workers only steal from it
    (measured on 2 cores: 0.130 s/image with 0 workers, 0.155 with 2); bigger machines and
    GPUs get 2."""
    import os
    return 2 if device.type != "cpu" or (os.cpu_count() or 1) > 4 else 0


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


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
    h, w = rgb.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return rgb
    return F.pad(rgb[None], (0, pw, 0, ph), mode="replicate")[0]


def _to_float(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float (C, H, W) in [0, 1]."""
    return torch.from_numpy(np.require(arr, requirements=["C", "W"])).permute(2, 0, 1).float().div_(255.0)


# -- the Translator --------------------------------------------------------------------------
class Translator:
    """A loaded generator that turns images into images of the same size (see the module docs).

    Call it on a PIL image (-> PIL image), a list of PIL images (-> list), a
    uint8 (H, W, 3) array (-> array), or a tensor (3, H, W) / (N, 3, H, W)
    in [0, 1] (-> float tensor of the same shape).  Gray inputs are repeated
    to RGB.  ``batch_size`` images go through the network at once.
    """

    def __init__(self, backend, cfg: RunConfig, *, policy: str = "resize", batch_size: int = 8,
                 source: str = "", dropout_noise: bool = False):
        if cfg.model.kind != "pix2pix":
            raise ConfigError(f"{source or 'model'}: a {cfg.model.kind} model generates from noise; "
                              "translate and eval need a pix2pix (image-to-image) model")
        if policy not in _POLICY_ALIASES:
            raise ConfigError(f"policy must be one of resize, pad (native), got {policy!r}")
        if batch_size < 1:
            raise ConfigError(f"batch-size must be at least 1, got {batch_size}")
        self.backend, self.cfg = backend, cfg
        self.policy = _POLICY_ALIASES[policy]
        self.batch_size = batch_size
        self.source = source
        self.dropout_noise = dropout_noise

    # -- loading --------------------------------------------------------------
    @classmethod
    def load(cls, model: str | Path, *, device: str = "auto", policy: str = "resize", batch_size: int = 8,
             dropout_noise: bool = False, seed: int | None = None) -> "Translator":
        """From a run folder, ``model.pt`` / ``latest.pt``, or a ``.onnx`` file from ``img2img export``."""
        from .gan.trainer import resolve_device
        path = Path(model)
        dev = resolve_device(device)
        if path.suffix.lower() == ".onnx":
            if not path.is_file():
                raise CheckpointError(f"{path}: no such ONNX file")
            if dropout_noise:
                raise ConfigError("--dropout-noise needs the PyTorch model: ONNX exports have dropout off")
            backend = _OnnxBackend(path, dev)
            return cls(backend, backend.cfg, policy=policy, batch_size=batch_size, source=str(path))
        from .gan.models import load_generator
        G, cfg = load_generator(path, device=dev)
        if cfg.model.kind != "pix2pix":
            raise ConfigError(f"{path}: a {cfg.model.kind} model generates from noise; "
                              "translate and eval need a pix2pix (image-to-image) model")
        if seed is not None:
            torch.manual_seed(seed)
        module = set_dropout(RGBGenerator(G, cfg).eval(), dropout_noise)
        return cls(_TorchBackend(module, dev), cfg, policy=policy, batch_size=batch_size,
                   source=str(path), dropout_noise=dropout_noise)

    # -- geometry -------------------------------------------------------------
    @property
    def size(self) -> int:
        """The model's training size (``resize`` policy runs at size x size)."""
        return self.cfg.model.image_size

    @property
    def multiple(self) -> int:
        """Network inputs must be multiples of this (2^depth)."""
        return 2 ** self.cfg.model.depth

    @property
    def device(self) -> torch.device:
        return self.backend.device

    def describe(self) -> str:
        m, d = self.cfg.model, self.cfg.data
        what = "colorization (L -> ab)" if d.colorization else f"{m.input_nc}->{m.output_nc} channels, {d.color}"
        return (f"{self.backend.name} model {self.source}: pix2pix {what}, trained at {m.image_size}px, "
                f"direction {d.direction}; policy {self.policy}; device {self.device}"
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
        for idx, batch in _shape_batches(prepared, self.batch_size):
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
            return to_uint8(self.translate_tensors([_to_float(arr)])[0])
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
                xs = [_to_float(np.asarray(to_rgb(im))) for im in images]
                return [Image.fromarray(to_uint8(y)) for y in self.translate_tensors(xs)]
            return [self(im) for im in images]
        raise TypeError(f"cannot translate a {type(images).__name__}; pass PIL images, arrays or tensors")


def _as_rgb(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected an image tensor (3, H, W) or (1, H, W), got shape {tuple(x.shape)}")
    return x.expand(3, -1, -1) if x.shape[0] == 1 else x


def _shape_batches(items: Sequence[torch.Tensor], batch_size: int):
    """(indices, stacked tensor) for runs of equal-shaped items, at most ``batch_size`` each."""
    groups: dict[tuple, list[int]] = {}
    for i, x in enumerate(items):
        groups.setdefault(tuple(x.shape), []).append(i)
    for idx in groups.values():
        for k in range(0, len(idx), batch_size):
            chunk = idx[k:k + batch_size]
            yield chunk, torch.stack([items[i] for i in chunk])


# -- folder translation -----------------------------------------------------------------------
@dataclass
class TranslateSummary:
    """What :func:`translate_folder` did."""
    output: Path
    translated: list[Path] = field(default_factory=list)     # files written
    skipped: list[Path] = field(default_factory=list)        # outputs that existed (no --overwrite)
    failed: list[str] = field(default_factory=list)          # one-line messages

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        parts = [f"{len(self.translated)} image(s) translated into {self.output}"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (output exists; --overwrite replaces it)")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return "; ".join(parts)


class _ImageFiles(Dataset):
    """Decodes and prepares one image per item; errors come back as items, never exceptions."""

    def __init__(self, files: list[Path], prepare, keep_original: bool):
        self.files, self.prepare, self.keep_original = files, prepare, keep_original

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        try:
            arr = load_image(self.files[i], 3)
        except DataError as e:
            return {"index": i, "error": str(e)}
        except Exception as e:  # noqa: BLE001 - e.g. MemoryError on a huge file: one line, not a traceback
            return {"index": i, "error": f"{self.files[i]}: cannot decode image ({_first_line(e)})"}
        rgb = _to_float(arr)
        item = {"index": i, "input": self.prepare(rgb), "size": tuple(rgb.shape[-2:])}
        if self.keep_original:
            item["original"] = torch.from_numpy(np.require(arr, requirements=["C", "W"]))
        return item


def _as_list(items: list) -> list:
    return items


def output_path(rel: Path, out_root: Path, suffix: str = "", fmt: str = "same") -> Path:
    """Where the translation of ``INPUT/rel`` goes: same relative path, optional suffix and format."""
    ext = rel.suffix if fmt == "same" else "." + fmt
    return out_root / rel.parent / f"{rel.stem}{suffix}{ext}"


def _plan(input: Path, output: Path, suffix: str, fmt: str) -> tuple[list[Path], list[Path], Path]:
    """(input files, their output paths, the output folder); refuses outputs inside the input folder."""
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not input.exists():
        raise DataError(f"{input}: no such file or directory")
    src = input.resolve()
    if input.is_file():
        files = list_images(input)                      # raises if not an image file
        dest = output / output_path(Path(input.name), Path(), suffix, fmt) if not is_image(output) else output
        if dest.resolve() == src:
            raise ConfigError(f"{dest}: the output would replace the input image; choose another OUTPUT")
        return files, [dest], dest.parent
    dst = output.resolve()
    if dst == src or src in dst.parents:
        raise ConfigError(f"{output}: the output folder is {'the input folder' if dst == src else 'inside the input folder'} "
                          f"{input}; choose an OUTPUT outside it (translate never writes into its input)")
    if output.exists() and not output.is_dir():
        raise ConfigError(f"{output}: exists and is not a folder (INPUT is a folder, so OUTPUT must be one)")
    files = list_images(input)
    if not files:
        raise DataError(f"{input}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)")
    outs = [output_path(f.relative_to(input), output, suffix, fmt) for f in files]
    return files, outs, output


def save_rgb(arr: np.ndarray, path: Path) -> None:
    """uint8 (H, W, 3) -> image file, format from the extension, written atomically."""
    from PIL import Image
    ext = path.suffix.lower()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP",
           ".tif": "TIFF", ".tiff": "TIFF"}.get(ext, "PNG")
    kw = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format=fmt, **kw)


def translate_folder(model: str | Path | Translator, input: str | Path, output: str | Path, *,
                     batch_size: int = 8, device: str = "auto", policy: str = "resize", workers: int | None = None,
                     overwrite: bool = False, suffix: str = "", format: str = "same",
                     dropout_noise: bool = False, seed: int | None = None, progress: bool = True,
                     verbose: bool = True, log=None) -> TranslateSummary:
    """Translate every image under ``input`` (recursive) or the single image ``input`` into ``output``.

    Outputs keep their relative path and name (plus ``suffix``; extension from
    ``format``, ``"same"`` keeps the input's).  Existing outputs are left alone
    unless ``overwrite``; unreadable files are reported in one line each and
    counted in ``summary.failed``.  Decoding runs in ``workers`` DataLoader
    processes (None: :func:`default_workers`) and encoding in a thread pool,
    overlapped with the network.
    ``model`` may be a loaded :class:`Translator` (then its device, policy and
    batch size are used).  ``verbose`` logs the model description first.
    """
    from tqdm import tqdm
    input, output = Path(input), Path(output)
    files, outs, out_root = _plan(input, output, suffix, format)
    log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    tr = model if isinstance(model, Translator) else Translator.load(
        model, device=device, policy=policy, batch_size=batch_size, dropout_noise=dropout_noise, seed=seed)
    if verbose:
        log(tr.describe())
    summary = TranslateSummary(out_root)
    todo: list[int] = []
    claimed: dict[Path, Path] = {}
    for i, (f, o) in enumerate(zip(files, outs)):
        key = o.resolve()
        if key in claimed:
            summary.failed.append(f"{f}: its output {o} would also be written by {claimed[key]}; skipped "
                                  "(use --suffix or --format same to keep names apart)")
            log(f"warning: {summary.failed[-1]}")
            continue
        claimed[key] = f
        if o.exists() and not overwrite:
            summary.skipped.append(o)
        else:
            todo.append(i)
    if summary.skipped:
        log(f"{len(summary.skipped)} output(s) already exist and are kept (--overwrite replaces them)")
    if not todo:
        return summary

    dataset = _ImageFiles([files[i] for i in todo], tr.preparer, tr.needs_original())
    if workers is None:
        workers = default_workers(tr.device)
    workers = max(0, min(workers, len(todo) // max(1, tr.batch_size)))
    loader = DataLoader(dataset, batch_size=tr.batch_size, shuffle=False, num_workers=workers,
                        collate_fn=_as_list, pin_memory=tr.device.type == "cuda",
                        persistent_workers=False, prefetch_factor=2 if workers else None)
    lock = threading.Lock()
    bar = tqdm(total=len(todo), desc="translate", unit="img", disable=not progress, dynamic_ncols=True,
               file=sys.stderr)

    def write(k: int, out: torch.Tensor, size, original) -> None:
        src, dest = files[todo[k]], outs[todo[k]]
        try:
            orig = _to_float(original.numpy()) if original is not None else None
            arr = to_uint8(tr.finish(out, size, orig))
            if dest.exists() and not overwrite:          # appeared while we worked: keep it
                with lock:
                    summary.skipped.append(dest)
            else:
                save_rgb(arr, dest)
                with lock:
                    summary.translated.append(dest)
        except Exception as e:  # noqa: BLE001 - a write failure is one line and a count, not a traceback
            with lock:
                summary.failed.append(f"{dest}: cannot write ({_first_line(e)}) for {src}")
                log(f"error: {summary.failed[-1]}")
        finally:
            bar.update()

    pending: list[Future] = []
    with ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="img2img-write") as pool:
        try:
            for items in loader:
                good = []
                for it in items:
                    if "error" in it:
                        with lock:
                            summary.failed.append(f"{it['error']}; skipped")
                            log(f"warning: {summary.failed[-1]}")
                        bar.update()
                    else:
                        good.append(it)
                for idx, batch in _shape_batches([it["input"] for it in good], tr.batch_size):
                    y = tr.run(batch)
                    for j, i in enumerate(idx):
                        it = good[i]
                        pending.append(pool.submit(write, it["index"], y[j], it["size"], it.get("original")))
                while len(pending) > 4 * tr.batch_size:          # bound memory held by unwritten outputs
                    pending.pop(0).result()
            for f in pending:
                f.result()
        finally:
            bar.close()
    summary.translated.sort()
    return summary
