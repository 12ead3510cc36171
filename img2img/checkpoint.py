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

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch

FORMAT = "img2img"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A model file that is missing, corrupt, unsafe or of the wrong kind (one-line message)."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsync'ed and renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)           # mkstemp makes 0600 files; give the usual mode
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_checkpoint(path: str | Path, config: dict[str, Any], state: dict[str, Any]) -> None:
    from . import __version__
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "img2img_version": __version__,
               "config": config, "state": state}
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
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
    """Load a checkpoint safely (``weights_only=True``) and check that it is one of ours."""
    p = resolve_checkpoint(path)
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except PermissionError:
        raise CheckpointError(f"{p}: permission denied") from None
    except Exception as e:  # noqa: BLE001 - unpickling raises many types
        text = str(e)
        if "weights_only" in text or "Unsupported global" in text or "Unsupported operand" in text:
            raise CheckpointError(f"{p}: refused to load: the file contains Python objects other than "
                                  "tensors and plain data (possibly code); only img2img checkpoints are accepted") from None
        raise CheckpointError(f"{p}: not a readable checkpoint ({text.splitlines()[0][:160] if text else type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "config" not in ckpt:
        raise CheckpointError(f"{p}: not an img2img checkpoint (no embedded configuration)")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{p}: written by a newer img2img (format {ckpt['format_version']}); upgrade img2img")
    return ckpt
