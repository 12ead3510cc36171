"""Drawing images from a trained unconditional generator (DCGAN, the MLP GAN).

Python API::

    from img2img import Sampler, sample, interpolate
    s = Sampler.load("runs/dcgan")          # a run folder, model.pt or latest.pt
    images = s.sample(64, seed=0)           # (64, 3, H, W) RGB in [0, 1]
    path = s.interpolate(1, 2, steps=8)     # (8, 3, H, W): a walk from seed 1's z to seed 2's
    images = sample("runs/dcgan", n=16)     # the same in one call

(The module is ``sampling``, not ``sample``, so that ``img2img.sample`` stays the
function after the module has been imported.)

Image ``i`` of ``sample(n, seed)`` depends only on ``seed`` and ``i``, not on ``n``
(``sample(8, 3)`` is the first 8 images of ``sample(64, 3)``), and not on the
batch it is computed in: the generator runs in eval mode with measured
BatchNorm statistics.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torchvision.utils import make_grid

from . import families
from .checkpoint import CheckpointError
from .color import to_uint8
from .config import ConfigError, RunConfig, check_int, check_seed
from .device import resolve_device
from .files import check_output, save_image
from .inference import load_generator

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
MAX_IMAGES = 100_000             # images per call (--n, --steps)
MAX_VALUES = 2 ** 28             # ... and at most 1 GiB of float32 pixels at once (4096 RGB images of 128x128)


class Sampler:
    """A generator and its config; call :meth:`sample` or :meth:`interpolate`."""

    def __init__(self, G: torch.nn.Module, cfg: RunConfig, batch_size: int = 256):
        self.family = families.get(cfg.model.kind)
        if self.family.conditional:
            raise CheckpointError(f"this is a {cfg.model.kind} model (it translates images, it does not draw them "
                                  "from noise); use `img2img translate`")
        self.G, self.cfg, self.batch_size = G.eval(), cfg, batch_size
        self.device = next(G.parameters()).device

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "Sampler":
        G, cfg = load_generator(path, resolve_device(device))
        try:
            return cls(G, cfg)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None      # name the file in the one-line message

    def noise(self, n: int, seed: int) -> torch.Tensor:
        """(n, z_dim) noise of the model's kind; row i depends only on ``seed`` and i.

        Drawn a row at a time: torch's vectorised normal sampler fills a tensor
        differently depending on its size, so one (n, z_dim) draw would not have
        the first rows of an (n + 1, z_dim) draw."""
        g = torch.Generator().manual_seed(seed)
        return torch.cat([self.family.noise(self.cfg, 1, "cpu", g) for _ in range(n)])

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Noise (N, z_dim) -> RGB images (N, 3, H, W) in [0, 1] (gray models give equal channels)."""
        out = [self.family.to_rgb(self.G(z[i:i + self.batch_size].to(self.device)), self.cfg).cpu()
               for i in range(0, z.shape[0], self.batch_size)]
        return torch.cat(out)

    def check_count(self, n: int, name: str = "n", low: int = 1) -> int:
        """``n`` if that many images fit the budget (:data:`MAX_IMAGES`, :data:`MAX_VALUES`); else ConfigError."""
        check_int(name, n, low, MAX_IMAGES)
        s = self.cfg.model.image_size
        most = max(1, MAX_VALUES // (3 * s * s))
        if n > most:
            raise ConfigError(f"{name} {n} is too many at once: at most {most:,} images of {s}x{s} "
                              f"(1 GiB of pixels); draw them in several runs")
        return n

    def sample(self, n: int = 64, seed: int = 0) -> torch.Tensor:
        self.check_count(n)
        check_seed(seed)
        return self.generate(self.noise(n, seed))

    def interpolate(self, seed_a: int, seed_b: int, steps: int = 8) -> torch.Tensor:
        """``steps`` images from seed_a's z to seed_b's z, both ends included: spherical
        interpolation for normal noise (it keeps |z| typical), linear for uniform noise."""
        self.check_count(steps, "steps", 2)
        check_seed(seed_a, "seed-a")
        check_seed(seed_b, "seed-b")
        za, zb = self.noise(1, seed_a)[0], self.noise(1, seed_b)[0]
        ts = torch.linspace(0, 1, steps)
        if self.cfg.family.noise == "normal":
            z = torch.stack([slerp(za, zb, float(t)) for t in ts])
        else:
            z = torch.stack([(1 - t) * za + t * zb for t in ts])
        return self.generate(z)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two vectors (linear when they are parallel)."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:
        return (1 - t) * a + t * b
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def _sampler(model) -> Sampler:
    return model if isinstance(model, Sampler) else Sampler.load(model)


def sample(model, n: int = 64, seed: int = 0) -> torch.Tensor:
    """``n`` images (N, 3, H, W) in [0, 1] from a Sampler, run folder or model file."""
    return _sampler(model).sample(n, seed)


def interpolate(model, seed_a: int, seed_b: int, steps: int = 8) -> torch.Tensor:
    """``steps`` images (steps, 3, H, W) in [0, 1] walking from seed_a's noise to seed_b's."""
    return _sampler(model).interpolate(seed_a, seed_b, steps)


def save_samples(images: torch.Tensor, out: str | Path, *, grid: bool = False, prefix: str = "sample",
                 nrow: int | None = None, gray: bool = False, overwrite: bool = False,
                 inputs=()) -> list[Path]:
    """Write images (N, 3, H, W) in [0, 1] as one grid or one PNG each; return the paths.

    ``out``: with ``grid``, a file name (``x.png``) or a folder (``FOLDER/{prefix}_grid.png``);
    without, a folder receiving ``{prefix}_0000.png`` ..., or a file name when N == 1.
    Existing files are never replaced unless ``overwrite``; no file is written into ``inputs``
    (e.g. the model file) or, through a symbolic link, outside ``out``.
    """
    out = Path(out)
    if nrow is not None:
        check_int("nrow", nrow, 1, MAX_IMAGES)
    is_file = out.suffix.lower() in IMAGE_SUFFIXES
    if is_file and out.is_dir():
        raise FileExistsError(f"{out}: is a folder, not a file name")
    if not is_file and out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if grid:
        paths = [out if is_file else out / f"{prefix}_grid.png"]
    elif is_file:
        if images.shape[0] != 1:
            raise ValueError(f"--out {out} names one file but there are {images.shape[0]} images; "
                             "give a folder, or add --grid for one picture")
        paths = [out]
    else:
        width = max(4, len(str(images.shape[0] - 1)))
        paths = [out / f"{prefix}_{i:0{width}d}.png" for i in range(images.shape[0])]
    for p in paths:
        problem = check_output(p, p.parent if is_file else out, inputs)
        if problem:
            raise ConfigError(problem)
    if not overwrite:
        existing = [p for p in paths if p.exists()]
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise FileExistsError(f"{existing[0]}: already exists{more}; choose another --out or pass --overwrite")
    if grid:
        images = make_grid(images.float().cpu(), nrow=nrow or max(1, math.ceil(math.sqrt(images.shape[0]))),
                           padding=2, pad_value=1.0)[None]
    for img, p in zip(images, paths):
        arr = to_uint8(img)
        save_image(arr[:, :, :1] if gray else arr, p)
    return paths
