"""Writing files safely, and one-line messages: the leaf every other module may import.

* :func:`atomic_path` / :func:`atomic_write_text` -- write to a temporary file
  beside the target, fsync, rename: a kill or a full disk leaves the old file
  or the new one, never half of one.
* :func:`save_image` -- the one image writer (format from the extension, the
  one extension table :data:`IMAGE_FORMATS`).
* :func:`first_line` -- the first line of an exception's text, for messages
  that must fit on one line.

Nothing here imports torch or any other img2img module.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import numpy as np

# file extension -> PIL format name; anything else is written as PNG
IMAGE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP",
                 ".tif": "TIFF", ".tiff": "TIFF"}


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of ``str(e)`` (at most ``limit`` characters), or the exception's type name."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


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
    except OSError as e:          # e.g. a full disk: name the file being written, not the temporary one
        if e.errno is None:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
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


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files that :func:`atomic_path` leaves when a process is killed mid-write.

    Only call this on a folder no other process is writing to (a run folder at the start of training).
    """
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        if tmp.is_file() and not tmp.is_symlink():
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def save_image(array: np.ndarray, path: str | Path, quality: int = 95, compress_level: int = 6) -> None:
    """Write a uint8 (H, W), (H, W, 1) or (H, W, 3) array atomically; format from the extension.

    JPEG and WebP use ``quality`` (JPEG without chroma subsampling from 90 up); PNG uses
    ``compress_level`` (0-9).
    """
    from PIL import Image
    path = Path(path)
    arr = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array
    fmt = IMAGE_FORMATS.get(path.suffix.lower(), "PNG")
    kw: dict = {}
    if fmt == "JPEG":
        kw = {"quality": quality, "subsampling": 0 if quality >= 90 else 2}
    elif fmt == "WEBP":
        kw = {"quality": quality}
    elif fmt == "PNG":
        kw = {"compress_level": compress_level}
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format=fmt, **kw)
