"""Checkpoints that describe themselves, written atomically, loaded safely.

A checkpoint is a ``torch.save`` dict::

    {"format": "img2img", "format_version": 1, "img2img_version": "...",
     "config": RunConfig.to_dict(), "state": {...}}

``state`` holds tensors and plain Python values only, so it loads with
``torch.load(weights_only=True)``: a file from the internet cannot run code.
Writes go to a temporary file in the same folder, are fsync'ed and then
renamed over the target, so a crash or kill leaves either the old or the new
file, never a broken one.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from .files import atomic_path, first_line

FORMAT = "img2img"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A model file that is missing, corrupt, unsafe or of the wrong kind (one-line message)."""


class _Sink:
    """The file torch.save writes to, remembering the OSError of a failed write or flush.

    torch's zip writer turns a failed write (a full disk) into ``RuntimeError: ... unexpected
    pos ...``; the error kept here says what really happened ("No space left on device")."""

    def __init__(self, f):
        self.f, self.name, self.error = f, f.name, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        try:
            self.f.flush()
        except OSError as e:
            self.error = self.error or e
            raise


def save_checkpoint(path: str | Path, config: dict[str, Any], state: dict[str, Any]) -> None:
    """Write a checkpoint atomically; CheckpointError (one line naming ``path``) if the write fails,
    e.g. on a full disk -- then the previous file at ``path`` is untouched."""
    import torch
    from . import __version__
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "img2img_version": __version__,
               "config": config, "state": state}
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                sink = _Sink(f)
                try:
                    torch.save(payload, sink)
                except RuntimeError as e:                  # torch's zip writer hides the OS error
                    if sink.error is not None:
                        raise sink.error from None
                    raise CheckpointError(f"{path}: could not write checkpoint ({first_line(e)}); "
                                          "the previous checkpoint is kept") from None
    except OSError as e:
        raise CheckpointError(f"{path}: could not write checkpoint ({e.strerror or e}); "
                              "the previous checkpoint is kept") from None


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder (-> its latest.pt) or a checkpoint file."""
    p = Path(path)
    if p.is_dir():
        for name in ("latest.pt", "model.pt"):
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p}: no checkpoint in this folder (expected latest.pt)")
    if not p.exists():
        raise CheckpointError(f"{p}: no such model file or run folder")
    return p


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``) and check that it is one of ours.

    Any failure is a :class:`CheckpointError` with one line naming the file: missing,
    empty, not a PyTorch file at all, damaged (truncated), or refused because it asks
    for Python objects (code) that a weights-only load never creates.
    """
    import torch
    p = resolve_checkpoint(path)
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except PermissionError:
        raise CheckpointError(f"{p}: permission denied") from None
    except OSError as e:
        raise CheckpointError(f"{p}: cannot read ({e.strerror or e})") from None
    if not head:
        raise CheckpointError(f"{p}: empty file (0 bytes), not a checkpoint")
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):    # torch zip archive, or a legacy pickle
        raise CheckpointError(f"{p}: not a PyTorch checkpoint (neither a torch.save archive nor a pickle); "
                              "expected a model.pt / latest.pt written by img2img")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")             # torch's pickle-protocol chatter; the error says it all
            ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except PermissionError:
        raise CheckpointError(f"{p}: permission denied") from None
    except Exception as e:  # noqa: BLE001 - unpickling raises many types
        text = str(e)
        code = re.search(r"(?:GLOBAL|global:?) ([\w.]+)", text)
        if code or "weights_only" in text or "Unsupported operand" in text:
            what = f" ({code.group(1)})" if code else ""
            raise CheckpointError(f"{p}: refused to load: the file asks for Python objects{what} other than tensors "
                                  "and plain data, which could run code; only img2img checkpoints are accepted") from None
        if isinstance(e, EOFError) or "central directory" in text or "zip archive" in text:
            raise CheckpointError(f"{p}: damaged or truncated checkpoint (an interrupted copy or download?)") from None
        raise CheckpointError(f"{p}: not a readable checkpoint ({text.splitlines()[0][:160] if text else type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "config" not in ckpt:
        raise CheckpointError(f"{p}: not an img2img checkpoint (no embedded configuration)")
    if not isinstance(ckpt.get("format_version", 0), int) or ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{p}: written by a newer img2img (format {ckpt['format_version']}); upgrade img2img")
    if not isinstance(ckpt["config"], dict) or not isinstance(ckpt.get("state"), dict):
        raise CheckpointError(f"{p}: damaged img2img checkpoint (its configuration or state is not a dictionary)")
    return ckpt
