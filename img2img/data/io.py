"""Finding and decoding image files, with one-line errors that name the file."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..color import gray_uint8

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Refuse absurd images rather than exhausting memory: anything above MAX_PIXELS (16384 x 16384,
# 268 megapixels: 0.8 GB as 8-bit RGB, 3.2 GB as float32) is an error naming the file, checked
# from the header before any pixel is decoded.  (PIL's own guard only warns below twice its limit.)
MAX_PIXELS = 16384 * 16384
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class DataError(ValueError):
    """A problem with the user's data; the message names the file and fits on one line."""


class DataWarning(UserWarning):
    """Something in the user's data that is left out (not an error); the CLI prints it on one line."""


def is_image(path: str | Path) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def list_images(root: str | Path) -> list[Path]:
    """All image files under ``root`` (recursive, sorted, hidden files skipped).

    Symbolic links to folders are not followed (they could loop, or lead out of the folder
    given); each one left out is announced with a :class:`DataWarning`.  Links to files are
    read like files.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such file or directory")
    if root.is_file():
        if not is_image(root):
            raise DataError(f"{root}: not an image file (expected one of {', '.join(IMAGE_EXTENSIONS)})")
        return [root]
    out = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_unlistable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):     # os.walk does not descend into it
                warnings.warn(DataWarning(f"{Path(dirpath) / d}: symbolic link to a folder, not followed "
                                          "(its images are left out; give the folder itself to include them)"))
        out += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".") and is_image(f)]
    return out


def _unlistable(e: OSError) -> None:
    """os.walk's error hook: a folder that cannot be listed is an error, not silently left out."""
    raise DataError(f"{e.filename}: cannot list folder ({_reason(e)})")


def _open(path: str | Path) -> Image.Image:
    """Image.open, refusing empty files and images above MAX_PIXELS before decoding anything."""
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(path)
    w, h = im.size
    if w * h > MAX_PIXELS:
        im.close()
        raise DataError(f"{path}: image of {w}x{h} pixels is too large (the limit is "
                        f"{MAX_PIXELS / 1e6:.0f} megapixels, e.g. 16384x16384)")
    return im


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header only, EXIF orientation applied; DataError if unreadable."""
    try:
        with _open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: cannot read image ({_reason(e)})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def load_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Decode ``path`` to a uint8 array (H, W, channels), channels 1 or 3.

    EXIF orientation is applied; gray, RGBA (composited on white), palette,
    CMYK and 16-bit images are converted.  Raises DataError naming the file.
    """
    try:
        with _open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
            rgb = to_rgb(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: cannot decode image ({_reason(e)})") from None
    if channels == 1:
        return gray_uint8(np.asarray(rgb))
    return np.asarray(rgb)


def to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL image -> 8-bit RGB: the one decoder's colour step (training data, translate, eval,
    serve's uploads and drawings).

    16-bit gray (``I;16*``) is scaled by 255/65535 and rounded; 32-bit ``I`` likewise when its
    values go above 255 (else they are 8-bit values already); float ``F`` in [0, 1] is scaled
    by 255, other floats clipped.  Transparency (an alpha channel, or a palette / gray / RGB
    image's ``transparency`` colour) is composited on white; CMYK, palette and the rest are
    converted by PIL.
    """
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        arr = arr * 255.0 if arr.max() <= 1.0 else arr
        im = Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _reason(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, UnidentifiedImageError):
        return "not a recognised image format"
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, Image.DecompressionBombError):
        return f"too large: more than the limit of {MAX_PIXELS / 1e6:.0f} megapixels"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return msg[:200]
