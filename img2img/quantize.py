"""int8 static quantization of an exported image-to-image ONNX model, with an accuracy gate.

    from img2img.quantize import quantize_onnx
    r = quantize_onnx("weights/sil.onnx", "weights/sil.int8.onnx", data="datasets/sil/train")
    print(r)        # wrote ...; int8 vs float: PSNR mean 41.2 dB (min 38.0) over 32 calibration images

The float file must come from ``img2img export`` of an image-to-image model
(pix2pix, or one direction of a CycleGAN model: RGB (N, 3, H, W) in [0, 1] in
and out).  ONNX Runtime's static quantization
(:func:`onnxruntime.quantization.quantize_static`) fixes every activation's
int8 range from calibration images run through the float model; the
weights are quantized per output channel.  The calibration images are the
model's *inputs*: a folder of images (``images``), or the images a
training-data folder in the model's own layout feeds the exported direction
(``data``: the input sides of a pairs folder for pix2pix, A/ or B/ of an
unpaired folder for CycleGAN); by default the training data named in the
model's metadata.  They are resized to the model's training size, as
``img2img translate`` does.

Accuracy gate.  The int8 model's output is compared with the float model's
on the calibration images (and on ``held_out_*`` images when given), PSNR
with peak 1 on RGB in [0, 1].  If the *mean* over the calibration images is
below ``threshold`` (default 35 dB) a :class:`QuantizeError` is raised and
nothing is written.  Why 35 dB: it is an RMS difference of 0.018, about 4.5
levels of 255, where differences start to be hard to see side by side; and
a pix2pix model's own error against the target is far larger (held-out
silhouettes: about 15 dB), so at 35 dB the quantization error adds about 1 %
to the model's squared error.

What is quantized: the convolutions (``Conv``), except the input layer and
the output layer (see :func:`prepare_float`).  4x4 stride-2 up-sampling
layers (the U-Net's) are convolutions already in an ``img2img export`` file
(sub-pixel form, :mod:`img2img.onnxgraph`); other ``ConvTranspose`` layers
(the ResNet generators' 3x3 ones) stay float: ONNX Runtime has no int8
ConvTranspose on the CPU.

The written file keeps the float model's metadata (so ``img2img translate``
and :class:`img2img.Translator` load it as any export) and adds
``quantization`` (JSON: settings and the measured PSNR).
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import families, onnxrt
from .config import ConfigError, RunConfig
from .data.io import DataError
from .files import atomic_path, first_line, private_folder
from .metrics import psnr_each

DEFAULT_THRESHOLD = 35.0
DEFAULT_IMAGES = 32
FORMATS = ("qdq", "qoperator")
METHODS = ("minmax", "entropy", "percentile")
#: ops quantized by default: the convolutions carry almost all of the work (the up-sampling
#: ConvTransposes are rewritten as Conv first, see :mod:`img2img.onnxgraph`); the rest
#: (InstanceNormalization, activations, Concat) stays float between them
DEFAULT_OPS = ("Conv",)
QUANT_KEY = "quantization"


class QuantizeError(RuntimeError):
    """Quantization failed or its accuracy is below the threshold (one-line message)."""


@dataclass
class QuantizeResult:
    path: Path
    psnr_mean: float                      # int8 vs float on the calibration images, dB
    psnr_min: float
    images: int                           # calibration images used
    held_out_psnr_mean: float | None = None
    held_out_psnr_min: float | None = None
    held_out_images: int = 0
    settings: dict = field(default_factory=dict)

    def __str__(self) -> str:
        text = (f"wrote {self.path}; int8 vs float: PSNR mean {self.psnr_mean:.1f} dB "
                f"(min {self.psnr_min:.1f}) over {self.images} calibration images")
        if self.held_out_images:
            text += (f", mean {self.held_out_psnr_mean:.1f} dB (min {self.held_out_psnr_min:.1f}) "
                     f"over {self.held_out_images} held-out images")
        return text


# -- inputs -----------------------------------------------------------------------------------
def read_metadata(model: str | Path) -> tuple[dict[str, str], RunConfig]:
    """(custom metadata, checked RunConfig) of a float image-to-image ``img2img export`` file
    (:func:`img2img.onnxrt.read_metadata`); one-line errors otherwise."""
    meta, cfg = onnxrt.read_metadata(model)
    path = Path(model)
    if not families.get(cfg.model.kind).conditional or meta.get("input") != "rgb":
        raise ConfigError(f"{path}: a {cfg.model.kind} model draws from noise; int8 quantization is for "
                          "image-to-image exports (pix2pix, cyclegan)")
    if QUANT_KEY in meta:
        raise ConfigError(f"{path}: already quantized; quantize the float export")
    return meta, cfg


def load_inputs(cfg: RunConfig, *, images: str | Path | None = None, data: str | Path | None = None,
                direction: str | None = None, limit: int = DEFAULT_IMAGES) -> np.ndarray:
    """Up to ``limit`` network inputs (N, 3, S, S) float32 RGB in [0, 1], S the model's size.

    ``images``: a folder of images (recursive, sorted) or one image; ``data``: a training-data
    folder in the model's layout, whose images feed ``direction`` (default: the model's
    first) -- the input sides of pairs, or one domain of an unpaired folder.  Evenly spaced
    through the folder when it holds more than ``limit``.
    """
    import torch

    from .color import to_float
    from .data.io import list_images, load_image
    from .translate import prepare_input
    if (images is None) == (data is None):
        raise ConfigError("give calibration images or a training-data folder (exactly one)")
    if limit < 1:
        raise ConfigError(f"the number of calibration images must be at least 1, got {limit}")
    fam = families.get(cfg.model.kind)
    if images is not None:
        root = Path(images)
        if not root.exists():
            raise DataError(f"{root}: no such file or folder")
        files = [root] if root.is_file() else list_images(root)
        if not files:
            raise DataError(f"{root}: no images found")
        arrays = [load_image(files[i], 3) for i in _spread(len(files), limit)]
    else:
        root = Path(data)
        if not root.exists():
            raise DataError(f"{root}: no such folder")
        direction = families.pick_direction(cfg, direction, str(root))
        n, load = fam.input_images(cfg, root, direction)
        if not n:
            raise DataError(f"{root}: no input images found for {direction}")
        arrays = [load(i) for i in _spread(n, limit)]
    size, multiple = cfg.model.image_size, fam.size_multiple(cfg)
    batch = [prepare_input(to_float(a), "resize", size, multiple) for a in arrays]
    return torch.stack(batch).numpy().astype(np.float32)


def _spread(n: int, k: int) -> list[int]:
    """min(n, k) indices spread evenly over range(n)."""
    if n <= k:
        return list(range(n))
    return sorted({int(i * n / k) for i in range(k)})


# -- quantization -----------------------------------------------------------------------------
def _reader(inputs: np.ndarray, name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        """Feeds the calibration images one at a time."""

        def __init__(self):
            self.it = iter(range(len(inputs)))

        def get_next(self):
            i = next(self.it, None)
            return None if i is None else {name: inputs[i:i + 1]}

        def rewind(self):
            self.it = iter(range(len(inputs)))

    return Reader()


def quantize_file(src: Path, dst: Path, inputs: np.ndarray, *, fmt: str = "qdq", per_channel: bool = True,
                  method: str = "minmax", op_types=DEFAULT_OPS, reduce_range: bool = False,
                  activation: str = "uint8", exclude: list[str] | None = None,
                  extra_options: dict | None = None) -> None:
    """ONNX Runtime static quantization of ``src`` (float) into ``dst``, calibrated on ``inputs``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    if fmt not in FORMATS:
        raise ConfigError(f"quantization format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if method not in METHODS:
        raise ConfigError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r}")
    name = onnxrt.session(src).get_inputs()[0].name
    with _quiet_root_logger():          # its advice to run quant_pre_process, and progress chatter
        quantize_static(
            str(src), str(dst), _reader(inputs, name),
            quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
            op_types_to_quantize=list(op_types) if op_types else None,
            per_channel=per_channel, reduce_range=reduce_range,
            activation_type=QuantType.QUInt8 if activation == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude or []),
            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                              "percentile": CalibrationMethod.Percentile}[method],
            extra_options=extra_options or {})


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime.quantization logs advice and progress on the root logger; keep it to errors."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def run_model(path: str | Path | bytes, inputs: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """Outputs of an ONNX model on ``inputs`` (N, 3, S, S), ``batch_size`` at a time."""
    return onnxrt.run(onnxrt.session(path), inputs, batch_size)


def prepare_float(src: Path, dst: Path, *, subpixel: bool = True, float_ends: bool = True) -> tuple[list[str], list[str]]:
    """Write ``src`` to ``dst`` with the up-sampling layers as convolutions (``subpixel``); return
    (the rewritten node names, the convolutions to keep in float).

    ``float_ends``: the input layer and the output layer stay float.  The input layer
    sees the full [-1, 1] range with only 3 input channels; in int8 on CPUs without
    VNNI (AVX2: 8-bit products summed in pairs into saturating 16 bits) it lost the
    most accuracy (measured: 33 dB with it, 52 dB without); the output layer writes
    the image itself (+3 dB).  Both are small: about 3 % of the FLOPs.
    """
    import onnx

    from .onnxgraph import subpixel_conv_transpose
    proto = onnx.load(str(src))
    rewritten = subpixel_conv_transpose(proto) if subpixel else []
    convs = [n.name for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    keep: list[str] = []
    if float_ends and convs:
        last = convs[-1]
        stem = last[:-len("_subpixel11")] if last.endswith("_subpixel11") else None
        keep = [convs[0]] + ([c for c in convs if c.startswith(f"{stem}_subpixel")] if stem else [last])
    onnx.save(proto, str(dst))
    return rewritten, keep


def quantize_onnx(model: str | Path, out: str | Path, *, images: str | Path | None = None,
                  data: str | Path | None = None, held_out_images: str | Path | None = None,
                  held_out_data: str | Path | None = None, n_images: int = DEFAULT_IMAGES,
                  threshold: float = DEFAULT_THRESHOLD, fmt: str = "qdq", per_channel: bool = True,
                  method: str = "minmax", op_types=DEFAULT_OPS, subpixel: bool = True, float_ends: bool = True,
                  overwrite: bool = False) -> QuantizeResult:
    """Write an int8 version of the float export ``model`` to ``out`` (.onnx); see the module docs.

    Calibrates on ``images`` or the training-data folder ``data`` (default: the model's
    training data, the images that feed the exported direction), at most ``n_images`` of them.  Raises :class:`QuantizeError` (nothing written)
    when the mean PSNR of int8 vs float outputs on them is below ``threshold`` dB.
    """
    import onnx
    model, out = Path(model), Path(out)
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"{out}: the output file name must end in .onnx")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out}: exists; pass --overwrite to replace it")
    if model.resolve() == out.resolve():
        raise ConfigError(f"{out}: would replace the float model; choose another name")
    if not (math.isfinite(threshold) and 0 <= threshold <= 100):
        raise ConfigError(f"the PSNR threshold must be between 0 and 100 dB, got {threshold}")
    meta, cfg = read_metadata(model)
    direction = meta.get("direction") or None          # the generator this file holds
    if images is None and data is None:
        data = getattr(cfg.data, families.get(cfg.model.kind).data)
        if not data or not Path(data).is_dir():
            raise ConfigError(f"{model}: the training data it names ({data or 'none'}) is not here; "
                              "give calibration images")
    inputs = load_inputs(cfg, images=images, data=data, direction=direction, limit=n_images)
    held = None
    if held_out_images is not None or held_out_data is not None:
        held = load_inputs(cfg, images=held_out_images, data=held_out_data, direction=direction,
                           limit=max(n_images, 1000))

    settings = {"format": fmt, "per_channel": per_channel, "method": method, "ops": list(op_types or []),
                "activations": "uint8", "weights": "int8", "calibration_images": len(inputs),
                "subpixel": subpixel, "float_ends": float_ends}
    with private_folder("img2img-quant-") as tmp:
        q, prepared = Path(tmp) / "int8.onnx", Path(tmp) / "float.onnx"
        try:
            rewritten, keep = prepare_float(model, prepared, subpixel=subpixel, float_ends=float_ends)
            settings["float_nodes"] = keep
            quantize_file(prepared, q, inputs, fmt=fmt, per_channel=per_channel, method=method, op_types=op_types,
                          exclude=keep)
        except ConfigError:
            raise
        except Exception as e:  # noqa: BLE001 - onnxruntime raises many types
            raise QuantizeError(f"{model}: quantization failed ({first_line(e)})") from None
        float_out, int8_out = run_model(model, inputs), run_model(q, inputs)
        scores = psnr_each(int8_out, float_out)
        result = QuantizeResult(out, float(scores.mean()), float(scores.min()), len(inputs), settings=settings)
        if held is not None:
            h = psnr_each(run_model(q, held), run_model(model, held))
            result.held_out_psnr_mean, result.held_out_psnr_min = float(h.mean()), float(h.min())
            result.held_out_images = len(held)
        if not result.psnr_mean >= threshold:
            raise QuantizeError(f"{model}: int8 output differs from float by PSNR {result.psnr_mean:.1f} dB "
                                f"(min {result.psnr_min:.1f}) on {len(inputs)} calibration images, below the "
                                f"{threshold:g} dB threshold; nothing written")
        proto = onnx.load(str(q))
        del proto.metadata_props[:]
        record = {**settings, "psnr_mean": round(result.psnr_mean, 2), "psnr_min": round(result.psnr_min, 2)}
        if held is not None:
            record.update(held_out_psnr_mean=round(result.held_out_psnr_mean, 2),
                          held_out_psnr_min=round(result.held_out_psnr_min, 2), held_out_images=len(held))
        for k, v in {**meta, QUANT_KEY: json.dumps(record)}.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        proto.producer_name = "img2img"
        with atomic_path(out) as dst:
            onnx.save(proto, str(dst))
    return result


def export_int8(model: str | Path, out: str | Path, *, images: str | Path | None = None,
                n_images: int = DEFAULT_IMAGES, threshold: float = DEFAULT_THRESHOLD, overwrite: bool = False,
                **export_options):
    """A trained model (run folder, model.pt, latest.pt) straight to an int8 ONNX file: the float
    export (:func:`img2img.export.export_onnx` with ``export_options``, its own torch parity check)
    into a scratch folder, then :func:`quantize_onnx` calibrated on ``images`` (default: the run's
    training data).  Returns (the float export's result, the QuantizeResult); nothing is written to
    ``out`` when either step fails (ExportError / QuantizeError)."""
    from .export import export_onnx
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"{out}: the output file name must end in .onnx")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out}: exists; pass --overwrite to replace it")
    with private_folder("img2img-export-") as tmp:
        exported = export_onnx(model, Path(tmp) / "float.onnx", overwrite=True, **export_options)
        quantized = quantize_onnx(exported.path, out, images=images, n_images=n_images, threshold=threshold,
                                  overwrite=overwrite)
    return exported, quantized


__all__ = ["DEFAULT_THRESHOLD", "export_int8", "QuantizeError", "QuantizeResult", "load_inputs", "prepare_float",
           "quantize_file",
           "quantize_onnx", "read_metadata", "run_model"]
