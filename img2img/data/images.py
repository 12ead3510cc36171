"""Single images for the unconditional GANs (DCGAN, the MLP GAN).

``--images SOURCE`` accepts

* **a folder of images** (searched recursively; jpg/png/bmp/webp/tiff, any size):
  each image is resized so its shorter side is the model size, then
  center-cropped to a square; gray or RGB by the model's ``output_nc``;
* **an MNIST-style IDX file** of images (``t10k-images-idx3-ubyte`` or its
  ``.gz``): read directly, each image resized to the model size.

Everything is decoded once, up front, into a uint8 tensor at the model size
(10,000 MNIST digits at 32x32 are 10 MB).  Bad input policy as for pairs: a
file that cannot be decoded stops the run with a one-line message naming it,
unless ``skip_bad`` leaves it out; a bad or truncated IDX file is always an
error that names the file and what is wrong with it.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..color import gray_uint8
from ..files import first_line
from .io import DataError, is_image, list_images, load_image

# IDX type byte -> (numpy big-endian dtype, name)
IDX_TYPES = {0x08: (">u1", "unsigned byte"), 0x09: (">i1", "signed byte"), 0x0B: (">i2", "short"),
             0x0C: (">i4", "int"), 0x0D: (">f4", "float"), 0x0E: (">f8", "double")}
GZIP_MAGIC = b"\x1f\x8b"


# -- IDX files -----------------------------------------------------------------
def is_idx_file(path: str | Path) -> bool:
    """True if ``path`` is a file that starts like an IDX file (plain or gzipped)."""
    p = Path(path)
    if not p.is_file() or is_image(p):
        return False
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head[:2] == GZIP_MAGIC or (len(head) == 4 and head[:2] == b"\0\0" and head[2] in IDX_TYPES)


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (gzipped or not), e.g. (10000, 28, 28) uint8 for MNIST.

    Raises DataError naming the file on a bad magic number, an unknown type,
    a truncated header or body, or trailing bytes.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror or e})") from None
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            reason = first_line(e, 160) if str(e).strip() else "truncated"
            raise DataError(f"{p}: damaged gzip file ({reason})") from None
    if len(raw) < 4:
        raise DataError(f"{p}: truncated IDX file ({len(raw)} bytes, shorter than the 4-byte magic number)")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in IDX_TYPES:
        raise DataError(f"{p}: not an IDX file (bad magic number 0x{raw[:4].hex()}; "
                        "expected 0x0000 followed by a type byte 08-0E and the number of dimensions)")
    if ndim < 1:
        raise DataError(f"{p}: bad IDX header (0 dimensions)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{p}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions need {header})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_TYPES[code][0])
    need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - header
    shape = "x".join(map(str, dims))
    if have < need:
        raise DataError(f"{p}: truncated IDX file (header says {shape} {IDX_TYPES[code][1]}s = {need} bytes "
                        f"of data, the file holds {have})")
    if have > need:
        raise DataError(f"{p}: {have - need} unexpected bytes after the {shape} IDX data (damaged file?)")
    return np.frombuffer(raw, dtype=dtype, count=need // dtype.itemsize, offset=header).reshape(dims)


def idx_images(path: str | Path) -> np.ndarray:
    """An IDX file of images -> uint8 (N, H, W, C), C = 1 for (N, H, W) files."""
    arr = read_idx(path)
    if arr.ndim == 1:
        raise DataError(f"{path}: IDX file of {arr.shape[0]} labels (1-d), not images; "
                        "use the images file (e.g. t10k-images-idx3-ubyte.gz)")
    if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[3] not in (1, 3)):
        raise DataError(f"{path}: IDX array of shape {'x'.join(map(str, arr.shape))} is not a stack of "
                        "images (expected N x H x W or N x H x W x 1|3)")
    if arr.shape[0] == 0:
        raise DataError(f"{path}: IDX file holds no images")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.dtype != np.uint8:
        a = arr.astype(np.float64)
        arr = np.clip(np.round(a * 255 if a.max() <= 1.0 else a), 0, 255).astype(np.uint8)
    return arr


# -- resizing ------------------------------------------------------------------
def fit_square(arr: np.ndarray, size: int, channels: int) -> np.ndarray:
    """uint8 (H, W, 1|3) -> (size, size, channels): shorter side to ``size``, center crop."""
    if arr.shape[2] != channels:
        if channels == 1:
            arr = gray_uint8(arr)
        else:
            arr = np.repeat(arr, 3, axis=2)
    h, w = arr.shape[:2]
    if (h, w) == (size, size):
        return arr
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    im = Image.fromarray(arr[:, :, 0] if channels == 1 else arr)
    im = im.resize((nw, nh), Image.BICUBIC if scale > 1 else Image.LANCZOS)
    top, left = (nh - size) // 2, (nw - size) // 2
    out = np.asarray(im.crop((left, top, left + size, top + size)))
    return out[:, :, None] if out.ndim == 2 else out


# -- the dataset ---------------------------------------------------------------
class ImageDataset(Dataset):
    """Yields ``{"image": (channels, size, size) float, "index": i}``.

    Values are in [-1, 1], or in [0, 1] with ``low=0`` (the sigmoid MLP GAN).
    """

    def __init__(self, source: str | Path, size: int, channels: int = 3, *, low: float = -1.0,
                 skip_bad: bool = False):
        if channels not in (1, 3):
            raise DataError(f"{source}: images must be gray (1 channel) or RGB (3 channels), not {channels}")
        self.source, self.size, self.channels, self.low = Path(source), size, channels, low
        self.skipped: list[str] = []
        if is_idx_file(self.source):
            self.format = "IDX file"
            arr = idx_images(self.source)
            self.names = [f"{self.source.name}[{i}]" for i in range(arr.shape[0])]
            images = [fit_square(a, size, channels) for a in arr]
        else:
            if self.source.is_file() and not is_image(self.source):
                raise DataError(f"{self.source}: neither an image folder, an image file nor an IDX file "
                                "(IDX files start with 0x0000 and a type byte, or are gzipped)")
            self.format = "images"
            files = list_images(self.source)
            images, self.names = [], []
            for f in files:
                try:
                    images.append(fit_square(load_image(f, channels), size, channels))
                except DataError as e:
                    if not skip_bad:
                        raise DataError(f"{e} (--skip-bad leaves bad files out)") from None
                    self.skipped.append(str(e))
                    continue
                self.names.append(str(f.relative_to(self.source)) if self.source.is_dir() else f.name)
            if not images:
                raise DataError(f"{self.source}: no usable images found"
                                + (f"; {len(self.skipped)} bad file(s) skipped" if self.skipped else ""))
        self.data = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()   # uint8 (N, C, S, S)

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, i: int) -> dict:
        x = self.data[i].float().div_(255.0)
        if self.low < 0:
            x = x.mul_(2.0).sub_(1.0)
        return {"image": x, "index": i}

    def describe(self) -> str:
        what = "gray" if self.channels == 1 else "RGB"
        return (f"{len(self)} {what} images of {self.size}x{self.size} from {self.format} {self.source}"
                + (f", {len(self.skipped)} bad file(s) skipped" if self.skipped else ""))
