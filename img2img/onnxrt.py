"""ONNX Runtime, the one place img2img opens it: sessions, batched runs, an export's metadata.

* :func:`import_onnxruntime` -- the module, or a one-line ConfigError saying what to install.
* :func:`session` -- an InferenceSession on a file or bytes (CPU; CUDA where asked and present),
  a one-line CheckpointError for a file that does not load.
* :func:`run` -- a session's outputs on an (N, ...) float32 array, ``batch_size`` at a time.
* :data:`CONFIG_KEY`, :func:`stored_config` -- the RunConfig an ``img2img export`` file carries
  in its metadata, read through the same checks as a checkpoint's; :func:`read_metadata` -- a
  file's metadata without building a session (``onnx``), with those checks.

Used by the ONNX backend of translate/eval/serve, export's torch-vs-ONNX check and the int8
quantizer.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import families
from .checkpoint import CheckpointError
from .config import ConfigError, RunConfig
from .files import first_line

CONFIG_KEY = "img2img_config"        # ONNX metadata entry holding the RunConfig as JSON


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("ONNX models need onnxruntime: pip install 'img2img[onnx]'") from None
    return onnxruntime


def session(model: str | Path | bytes, device=None):
    """An ONNX Runtime session on ``model`` (a path or the serialized bytes); on ``device``
    (a torch.device) of type cuda through the CUDA provider, else on the CPU."""
    ort = import_onnxruntime()
    providers: list = ["CPUExecutionProvider"]
    if device is not None and device.type == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ConfigError(f"--device {device}: this onnxruntime has no CUDA support "
                              "(install onnxruntime-gpu, or use --device cpu)")
        providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    src = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(src, providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        what = "the exported model" if isinstance(model, bytes) else model
        raise CheckpointError(f"{what}: not a loadable ONNX model ({first_line(e)})") from None


def run(sess, inputs: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """The first output of ``sess`` on ``inputs`` (N, ...), ``batch_size`` at a time, concatenated."""
    name = sess.get_inputs()[0].name
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    return np.concatenate([sess.run(None, {name: inputs[i:i + batch_size]})[0]
                           for i in range(0, len(inputs), batch_size)])


def stored_config(meta: dict[str, str], path) -> RunConfig:
    """The RunConfig in an export's metadata ``meta``, checked like every config (types, ranges,
    upper bounds); CheckpointError in one line if it is missing or not valid."""
    if CONFIG_KEY not in meta:
        raise CheckpointError(f"{path}: not an img2img ONNX export (no {CONFIG_KEY} metadata); "
                              "export models with `img2img export`")
    try:
        d = json.loads(meta[CONFIG_KEY])
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"{path}: the configuration stored in this ONNX file is not valid JSON "
                              f"({first_line(e)})") from None
    return families.stored_config({"config": d}, path, what="ONNX file")


def read_metadata(model: str | Path) -> tuple[dict[str, str], RunConfig]:
    """(the custom metadata, the checked RunConfig) of an ``img2img export`` file, read with
    ``onnx`` (no session); one-line errors otherwise."""
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX files need onnx: pip install 'img2img[onnx]'") from None
    path = Path(model)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such ONNX file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf decode errors have many types
        raise CheckpointError(f"{path}: not an ONNX file ({first_line(e)})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    return meta, stored_config(meta, path)


__all__ = ["CONFIG_KEY", "import_onnxruntime", "read_metadata", "run", "session", "stored_config"]
