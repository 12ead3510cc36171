"""What every GAN from noise shares (DCGAN, the MLP GAN): G(z) -> x, D sees x alone.

Trains on ``--images`` (a folder or an MNIST IDX file; gray when the source is
an IDX file).  Sample grids show 64 images from fixed noise.  For samples,
model.pt and ``img2img sample`` the generator's BatchNorm statistics are
measured for its current weights (:func:`recalibrate_batchnorm`).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from .. import color as colorlib
from dataclasses import dataclass

from ..config import MAX_Z_DIM, ConfigError, FamilySettings, RunConfig, check_int, setting
from .base import Family, Tensor
from .wrappers import NoiseGenerator


NOISES = ("normal", "uniform")


@dataclass
class NoiseSettings(FamilySettings):
    """What the GANs from noise share: the noise they draw."""
    z_dim: int = setting(100, "noise dimensions", metavar='N', section="model")
    noise: str = setting("normal", "noise distribution, N(0,1) or U(-1,1)", choices=NOISES, section="model")

    def validate(self) -> None:
        super().validate()
        check_int("z-dim", self.z_dim, 1, MAX_Z_DIM)
        if self.noise not in NOISES:
            raise ConfigError(f"noise must be one of {', '.join(NOISES)}, got {self.noise!r}")


class Unconditional(Family):
    data = "images"
    conditional = False
    settings = NoiseSettings
    loss_names = ("D", "G_GAN", "D_real", "D_fake")
    io_names = ("z", "image")
    inference_note = "BatchNorm stored statistics, dropout off"
    # batch 64 and a constant learning rate, as in the DCGAN paper; no flips of digits
    defaults = {"batch_size": 64, "epochs": 25, "epochs_decay": 0, "flip": False, "g_ema": 0.0}

    @classmethod
    def configure(cls, cfg: RunConfig, given: set[str]) -> None:
        """Gray images (output_nc 1) when --images is an MNIST IDX file, else RGB."""
        if "output_nc" not in given and cfg.data.images:
            from ..data.images import is_idx_file
            cfg.model.output_nc = 1 if is_idx_file(cfg.data.images) else 3

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        m = cfg.model
        if m.output_nc not in (1, 3):
            raise ConfigError(f"{cls.name} makes gray (output-nc 1) or RGB (output-nc 3) images, not {m.output_nc}")

    @classmethod
    def output_low(cls, cfg: RunConfig) -> float:
        """The bottom of G's output range (the top is 1): -1 for tanh outputs."""
        return -1.0

    @classmethod
    def dataset(cls, cfg: RunConfig, train: bool = True):
        from ..data.images import ImageDataset
        m, d = cfg.model, cfg.data
        return ImageDataset(d.images, m.image_size, m.output_nc, low=cls.output_low(cfg), skip_bad=d.skip_bad)

    @classmethod
    def to_rgb(cls, x: Tensor, cfg: RunConfig) -> Tensor:
        low = cls.output_low(cfg)
        if low != -1.0:
            x = (x - low) * (2.0 / (1.0 - low)) - 1.0
        rgb = colorlib.decode(x, cfg.data.color)
        return rgb.repeat(1, 3, 1, 1) if rgb.shape[1] == 1 else rgb

    @classmethod
    def inference_module(cls, G: nn.Module, cfg: RunConfig, direction: str | None = None) -> nn.Module:
        return NoiseGenerator(G, cfg, low=cls.output_low(cfg)).eval()

    @classmethod
    def example_inputs(cls, cfg: RunConfig, seed: int = 0) -> list[Tensor]:
        g = torch.Generator().manual_seed(seed)
        return [torch.randn(4, cfg.family.z_dim, generator=g), torch.randn(1, cfg.family.z_dim, generator=g)]

    @classmethod
    def size_multiple(cls, cfg: RunConfig) -> int:
        return cfg.model.image_size

    @classmethod
    def loaded(cls, G: nn.Module, cfg: RunConfig, state: dict) -> nn.Module:
        """A generator from a training state (latest.pt) has no measured BatchNorm statistics yet."""
        return recalibrate_batchnorm(G, cfg) if "opt_g" in state else G.eval()

    @classmethod
    def noise(cls, cfg: RunConfig, n: int, device, generator: torch.Generator | None = None) -> Tensor:
        return sample_noise(cfg, n, device, generator)

    # -- training -----------------------------------------------------------------------
    def generate(self, batch: dict, G: nn.Module | None = None) -> Tensor:
        """G(z): ``batch["z"]`` when given (fixed noise for sample grids), else fresh noise."""
        z = batch.get("z")
        if z is None:
            real = batch["image"]
            z = sample_noise(self.cfg, real.shape[0], real.device)
        return (G or self.G)(z)

    def d_terms(self, batch: dict, fake: Tensor):
        return [("D", self.D, batch["image"], fake)]

    def g_terms(self, batch: dict, fake: Tensor):
        return [("G_GAN", self.D, fake)], {}

    def preview_batch(self, dataset) -> dict:
        g = torch.Generator().manual_seed(self.cfg.train.seed)
        return {"z": sample_noise(self.cfg, 64, "cpu", g)}

    def display(self, batch: dict, fake: Tensor) -> list[Tensor]:
        return [self.to_rgb(fake, self.cfg)]

    def prepare_eval(self, G: nn.Module) -> nn.Module:
        """A copy of G in eval mode whose BatchNorm statistics are measured for its current weights."""
        return recalibrate_batchnorm(G, self.cfg, copy_first=True)


def sample_noise(cfg: RunConfig, n: int, device, generator: torch.Generator | None = None) -> Tensor:
    """z for an unconditional generator: N(0, 1) or U(-1, 1), shape (n, z_dim)."""
    shape = (n, cfg.family.z_dim)
    if cfg.family.noise == "uniform":
        return torch.rand(shape, generator=generator, device=device) * 2 - 1
    return torch.randn(shape, generator=generator, device=device)


def recalibrate_batchnorm(G: nn.Module, cfg: RunConfig, n: int = 1024, batch: int = 256,
                          copy_first: bool = False) -> nn.Module:
    """Set the running BatchNorm statistics of an unconditional G to their exact values for its
    current weights (an average over ``n`` fixed noise samples), and return it in eval mode.

    BatchNorm's running averages (momentum 0.1) mix the statistics of the last few
    training steps, and are copied from the live generator into the weight EMA, which
    they do not fit; measured statistics make eval-mode samples match the weights and
    independent of the batch they are drawn in.  Uses its own random generator, so the
    training run's random stream is untouched.  Networks without BatchNorm are returned as is.
    """
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return G.eval()
    if copy_first:
        G = copy.deepcopy(G)
        bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    device = next(G.parameters()).device
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                      # cumulative average over the batches below
    g = torch.Generator().manual_seed(1234)
    G.train()
    with torch.no_grad():
        for i in range(0, n, batch):
            G(sample_noise(cfg, min(batch, n - i), "cpu", g).to(device))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    return G.eval()
