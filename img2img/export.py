"""ONNX export of a generator, and the parity check against PyTorch.

The exported graph is self-contained:

* image-to-image models (pix2pix; CycleGAN, one direction's generator, picked
  with ``direction``): input ``image`` (N, 3, H, W) float32 RGB in [0, 1] ->
  output ``output`` (N, 3, H, W) RGB in [0, 1].  The color handling the model
  was trained with is inside the graph (RGB -> Lab in and Lab -> RGB out for
  Lab models; for colorization the L of the input is taken in and recombined
  with the predicted ab; gray conversion for 1-channel models).  N, H and W
  are dynamic, and H and W may be anything: inside the graph the image is
  padded at the bottom and right (edge pixels repeated) to a multiple of the
  family's size multiple (``size_multiple`` in the metadata: 2^depth for the
  U-Net, 4 for the ResNet generators), translated and cropped back --
  ``img2img translate``'s ``pad`` policy, at the image's own resolution.
  ``img2img translate model.onnx ...`` (default policy ``resize``) feeds it
  images already resized to the training size, where the padding is a no-op,
  exactly as with the PyTorch model.  For the same result as ``resize`` from
  a raw ONNX Runtime session, resize to ``image_size``² first and back after.
  The U-Net's up-sampling layers are written as sub-pixel convolutions
  (:mod:`img2img.onnxgraph`): the same function, faster in ONNX Runtime.
* DCGAN / MLP GAN: input ``z`` (N, z_dim) noise -> output ``image``
  (N, 3, S, S) RGB in [0, 1]; N is dynamic.

Inference behaviour matches :class:`img2img.Translator`'s torch path: the
U-Net's BatchNorm normalises each image by its own statistics
(``InstanceNormalization``), dropout is off; DCGAN BatchNorm uses its stored
statistics.  The model's metadata holds the img2img config (JSON), the opset,
the input kind and the measured parity.

Every export is verified before the file appears: ONNX Runtime and PyTorch
run the same inputs (two batch sizes; for images three spatial sizes, one not a
multiple of ``size_multiple``) and the maximum
absolute difference must be at most ``atol`` (1e-4), otherwise
:class:`ExportError` is raised and nothing is written.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import families, onnxrt
from .config import DEFAULT_OPSET, EXPORTERS, ConfigError, RunConfig, check_int, check_number
from .checkpoint import resolve_checkpoint
from .families.wrappers import PadToMultiple
from .files import atomic_path, check_output, first_line
from .inference import load_generator

MIN_OPSET, MAX_OPSET = 7, 23      # what the exporters write here (torch 2.14, onnx 1.x); dynamo from ~15 up


class ExportError(RuntimeError):
    """The export failed or its output does not match PyTorch (one-line message)."""


@dataclass
class ExportResult:
    path: Path
    opset: int
    max_abs_diff: float
    checked: list[tuple[int, ...]] = field(default_factory=list)   # input shapes compared
    exporter: str = "dynamo"
    notes: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)               # ConvTransposes written as sub-pixel convs

    def __str__(self) -> str:
        shapes = ", ".join("x".join(map(str, s)) for s in self.checked)
        return (f"wrote {self.path} (opset {self.opset}, {self.exporter} exporter); onnxruntime vs torch: "
                f"max abs diff {self.max_abs_diff:.3g} over inputs {shapes}")


def wrap_generator(G: torch.nn.Module, cfg: RunConfig, direction: str | None = None) -> torch.nn.Module:
    """The generator as the self-contained function that is exported (eval mode, dropout off):
    the family's ``export_module`` (image-to-image models take any H and W);
    ``direction`` picks one of a CycleGAN model's two generators."""
    return families.get(cfg.model.kind).export_module(G, cfg, direction).eval()


def example_inputs(cfg: RunConfig, seed: int = 0) -> list[torch.Tensor]:
    """Inputs for the parity check: two batch sizes (and, for image inputs, three spatial sizes,
    the last not a multiple of the family's size multiple)."""
    return families.get(cfg.model.kind).example_inputs(cfg, seed)


def export_onnx(model: str | Path, out: str | Path, *, opset: int = DEFAULT_OPSET, atol: float = 1e-4,
                verify: bool = True, overwrite: bool = False, exporter: str = "dynamo",
                direction: str | None = None, subpixel: bool = True) -> ExportResult:
    """Export the generator of ``model`` (run folder, model.pt or latest.pt) to ``out`` (.onnx).

    ``subpixel``: up-sampling ConvTransposes (4x4, stride 2: the U-Net's, DCGAN's)
    are written as four 2x2 convolutions each (:mod:`img2img.onnxgraph`: the same function, which ONNX
    Runtime runs with its blocked Conv kernels instead of its slow ConvTranspose,
    and the form int8 quantization needs).

    Verifies the file with ONNX Runtime against PyTorch (max abs diff <= ``atol``)
    before it is moved into place; raises :class:`ExportError` otherwise.
    ``direction`` picks the generator of a CycleGAN model (``"AtoB"``, the default, or ``"BtoA"``).
    ``exporter``: ``"dynamo"`` (torch.export based, the default) or
    ``"torchscript"`` (the legacy tracer: faster, deprecated by PyTorch); if the
    dynamo exporter fails the legacy one is tried and a note says so.
    """
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"{out}: the output file name must end in .onnx")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out}: exists; pass --overwrite to replace it")
    if exporter not in EXPORTERS:
        raise ConfigError(f"exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    check_int("opset", opset, MIN_OPSET, MAX_OPSET)
    check_number("atol", atol, 0.0, 1.0)
    problem = check_output(out, out.parent, [resolve_checkpoint(model)])
    if problem:
        raise ConfigError(problem)
    onnx, _ = _import_onnx()          # both installed, before the export work
    G, cfg = load_generator(model, device="cpu")
    fam = families.get(cfg.model.kind)
    if fam.conditional:
        direction = families.pick_direction(cfg, direction, str(model))
    elif direction is not None:
        raise ConfigError(f"{model}: a {cfg.model.kind} model draws from noise; --direction is for image-to-image models")
    module = wrap_generator(G, cfg, direction)
    inputs = example_inputs(cfg)
    image_input = fam.conditional
    in_name, out_name = fam.io_names
    result = ExportResult(out, opset, float("nan"), exporter=exporter)

    def torchscript_instead(why: str, failed: str) -> None:
        """Export again with the legacy exporter (noting ``why``); ExportError "``failed`` (...)" if that fails too."""
        result.notes.append(f"{why}; used the torchscript exporter")
        result.exporter = "torchscript"
        try:
            _export(module, inputs[0], tmp, opset, in_name, out_name, image_input, "torchscript")
        except Exception as e:  # noqa: BLE001 - exporters raise many types
            raise ExportError(f"{out}: {failed} ({first_line(e)})") from None

    with atomic_path(out) as tmp:
        try:
            _export(module, inputs[0], tmp, opset, in_name, out_name, image_input, exporter)
        except Exception as e:  # noqa: BLE001 - exporters raise many types
            if exporter != "dynamo":
                raise ExportError(f"{out}: ONNX export failed ({first_line(e)})") from None
            torchscript_instead(f"the dynamo exporter failed ({first_line(e)})", "ONNX export failed")
        proto = onnx.load(str(tmp))
        actual_opset = _opset(proto, opset)
        if actual_opset != opset and result.exporter == "dynamo":
            # the dynamo exporter writes opset 18 and converts down; below ~15 the converter fails and it
            # silently keeps 18.  The legacy exporter writes the opset asked for.
            torchscript_instead(f"the dynamo exporter could not write opset {opset} (it wrote {actual_opset})",
                                f"ONNX export at opset {opset} failed")
            proto = onnx.load(str(tmp))
            actual_opset = _opset(proto, opset)
        if actual_opset != opset:
            raise ExportError(f"{out}: asked for opset {opset}, the exporter wrote {actual_opset}; "
                              "the file was not written")
        if subpixel:
            from .onnxgraph import subpixel_conv_transpose
            result.rewritten = subpixel_conv_transpose(proto)
        result.opset = actual_opset
        any_hw = ", any H and W" if isinstance(module, PadToMultiple) else ""
        meta = {
            onnxrt.CONFIG_KEY: json.dumps(cfg.to_dict()),
            "img2img_version": _version(),
            "opset": str(actual_opset),
            "kind": cfg.model.kind,
            "input": "rgb" if image_input else "noise",
            **({"direction": direction} if image_input else {}),
            "image_size": str(cfg.model.image_size),
            "size_multiple": str(fam.size_multiple(cfg)),
            **({"any_size": f"padded (edge pixels repeated) to a multiple of {module.multiple} inside the graph "
                            "and cropped back"} if isinstance(module, PadToMultiple) else {}),
            "io": (f"{in_name}: (N, 3, H, W) float32 RGB in [0, 1]{any_hw} -> {out_name}: (N, 3, H, W) RGB in [0, 1]"
                   if image_input else f"{in_name}: (N, {cfg.family.z_dim}) float32 {cfg.family.noise} noise -> "
                                       f"{out_name}: (N, 3, S, S) RGB in [0, 1]"),
            "inference": fam.inference_note,
        }
        if result.rewritten:
            meta["upsampling"] = f"{len(result.rewritten)} ConvTranspose layers as sub-pixel 2x2 convolutions"
        if verify:
            result.max_abs_diff, result.checked = compare(module, proto.SerializeToString(), inputs)
            meta["parity_max_abs_diff"] = f"{result.max_abs_diff:.3g}"
            if not result.max_abs_diff <= atol:
                raise ExportError(f"{out}: onnxruntime and torch disagree by up to {result.max_abs_diff:.3g} "
                                  f"(allowed {atol:g}); the file was not written")
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        proto.producer_name = "img2img"
        onnx.save(proto, str(tmp))
    return result


def compare(module: torch.nn.Module, onnx_model: bytes | str | Path,
            inputs: list[torch.Tensor]) -> tuple[float, list[tuple[int, ...]]]:
    """(max abs difference between torch and onnxruntime over ``inputs``, the shapes compared)."""
    session = onnxrt.session(onnx_model)
    name = session.get_inputs()[0].name
    worst, shapes = 0.0, []
    for x in inputs:
        with torch.inference_mode():
            ref = module(x).float().numpy()
        got = session.run(None, {name: x.numpy().astype(np.float32)})[0]
        if got.shape != ref.shape:
            raise ExportError(f"onnxruntime output shape {got.shape} differs from torch's {ref.shape} "
                              f"for input {tuple(x.shape)}")
        worst = max(worst, float(np.abs(got - ref).max()) if np.isfinite(got).all() else float("inf"))
        shapes.append(tuple(x.shape))
    return worst, shapes


def _opset(proto, default: int) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default)


@contextlib.contextmanager
def _quiet_loggers():
    """The exporters log warnings and tracebacks of their own (opset conversion attempts) straight to
    stderr; img2img reports what matters in its own notes, on one line each."""
    names = ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript", "onnx_ir", "onnx")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _export(module, x, path: Path, opset: int, in_name: str, out_name: str, spatial: bool, exporter: str) -> None:
    with warnings.catch_warnings(), _quiet_loggers():
        warnings.simplefilter("ignore")               # tracer and deprecation chatter
        if exporter == "dynamo":
            from torch.export import Dim
            dims = {0: Dim.DYNAMIC, 2: Dim.DYNAMIC, 3: Dim.DYNAMIC} if spatial else {0: Dim.DYNAMIC}
            # positional (one entry per argument): torch 2.6 takes a dict's keys for input_names,
            # newer versions for forward()'s parameter names
            prog = torch.onnx.export(module, (x,), None, input_names=[in_name], output_names=[out_name],
                                     opset_version=opset, dynamo=True, dynamic_shapes=(dims,),
                                     external_data=False, verbose=False)
            prog.save(str(path), external_data=False)
        else:
            axes = {0: "batch", 2: "height", 3: "width"} if spatial else {0: "batch"}
            out_axes = {0: "batch", 2: "height", 3: "width"} if spatial else {0: "batch"}
            torch.onnx.export(module, (x,), str(path), input_names=[in_name], output_names=[out_name],
                              opset_version=opset, dynamo=False,
                              dynamic_axes={in_name: axes, out_name: out_axes})


def _import_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise ConfigError("ONNX export needs onnx, onnxruntime and onnxscript: pip install 'img2img[onnx]'") from None
    return onnx, onnxruntime


def _version() -> str:
    from . import __version__
    return __version__


__all__ = ["ExportError", "ExportResult", "compare", "example_inputs", "export_onnx",
           "wrap_generator"]
