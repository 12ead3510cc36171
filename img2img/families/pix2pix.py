"""pix2pix (Isola et al., 2017): a conditional GAN on aligned pairs.

G(A) -> B with the U-Net; D is the 70x70 PatchGAN on the channel concatenation
cat(A, B) (real) or cat(A, G(A)) (generated); G minimises the GAN term plus
λ·L1(G(A), B).  D's loss is halved, as in the paper.  Trains on ``--pairs``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import color as colorlib
from ..config import ConfigError, RunConfig
from ..nets import PatchDiscriminator, UNetGenerator, init_weights
from ..nets.init import init_upsampling_evenly
from ..nets.smallconv import use_matmul_convs
from .base import Family, Tensor
from .wrappers import RGBGenerator


class Pix2Pix(Family):
    name = "pix2pix"
    data = "pairs"
    conditional = True
    loss_names = ("D", "G_GAN", "G_L1", "D_real", "D_fake")
    d_loss_scale = 0.5
    size_flag = "--crop-size"
    inference_note = "BatchNorm per-sample statistics (U-Net), dropout off"

    # -- configuration and networks ---------------------------------------------------
    @classmethod
    def configure(cls, cfg: RunConfig, given: set[str]) -> None:
        """image_size is the crop size; the U-Net goes down to 1x1 at that size (at most 8 levels);
        --colorization means a 1-channel (L) input and a 2-channel (ab) output."""
        m, d = cfg.model, cfg.data
        if "image_size" not in given:
            m.image_size = d.crop_size
        if "depth" not in given:
            m.depth = min(8, halvings(m.image_size))
        if d.colorization:
            if "input_nc" not in given:
                m.input_nc = 1
            if "output_nc" not in given:
                m.output_nc = 2

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        m, d = cfg.model, cfg.data
        if m.depth < 2:
            raise ConfigError(f"depth must be at least 2 (the U-Net needs two levels), got {m.depth}")
        if m.image_size % (2 ** m.depth):
            raise ConfigError(
                f"image size {m.image_size} is not a multiple of 2^depth = {2 ** m.depth}; "
                f"use --crop-size {2 ** m.depth * max(1, round(m.image_size / 2 ** m.depth))} or a smaller --depth")
        if d.colorization and (m.input_nc, m.output_nc) != (1, 2):
            raise ConfigError("--colorization uses a 1-channel (L) input and a 2-channel (ab) output")
        if d.color == "lab" and not d.colorization and (m.input_nc != 3 or m.output_nc != 3):
            raise ConfigError("--color lab needs 3-channel input and output")

    @classmethod
    def build_generator(cls, cfg: RunConfig) -> nn.Module:
        m = cfg.model
        G = UNetGenerator(m.input_nc, m.output_nc, m.ngf, m.depth, m.dropout)
        return use_matmul_convs(G) if cfg.train.cpu_matmul else G

    @classmethod
    def build_discriminator(cls, cfg: RunConfig) -> nn.Module:
        m = cfg.model
        return PatchDiscriminator(m.input_nc + m.output_nc, m.ndf, m.d_layers)

    @classmethod
    def dataset(cls, cfg: RunConfig, train: bool = True):
        from ..data.paired import PairedDataset
        d, m = cfg.data, cfg.model
        return PairedDataset(d.pairs, direction=d.direction, input_nc=m.input_nc, output_nc=m.output_nc,
                             load_size=d.load_size, crop_size=d.crop_size, resize=d.resize, crop=d.crop,
                             flip=d.flip, color=d.color, colorization=d.colorization, skip_bad=d.skip_bad,
                             cache=d.cache, divisor=2 ** m.depth, seed=cfg.train.seed, train=train)

    @classmethod
    def to_rgb(cls, x: Tensor, cfg: RunConfig, L: Tensor | None = None) -> Tensor:
        """A network-space tensor (N, C, H, W) -> RGB (N, 3, H, W) in [0, 1].

        ``L`` (the scaled L channel of the input) is needed to show colorization outputs (ab only).
        """
        if cfg.data.colorization:
            if x.shape[1] == 1:                      # the L input itself: show as gray
                return colorlib.merge_l_ab(x, torch.zeros_like(x).repeat(1, 2, 1, 1))
            return colorlib.merge_l_ab(L, x)
        rgb = colorlib.decode(x, cfg.data.color)
        return rgb.repeat(1, 3, 1, 1) if rgb.shape[1] == 1 else rgb

    @classmethod
    def inference_module(cls, G: nn.Module, cfg: RunConfig) -> nn.Module:
        return RGBGenerator(G, cfg).eval()

    @classmethod
    def example_inputs(cls, cfg: RunConfig, seed: int = 0) -> list[Tensor]:
        """Two batch sizes and two spatial sizes (one not square)."""
        g = torch.Generator().manual_seed(seed)
        s, k = cfg.model.image_size, cls.size_multiple(cfg)
        return [torch.rand(2, 3, s, s, generator=g), torch.rand(1, 3, k * max(1, s // k // 2), s + k, generator=g)]

    @classmethod
    def size_multiple(cls, cfg: RunConfig) -> int:
        return 2 ** cfg.model.depth

    # -- training -----------------------------------------------------------------------
    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.G = init_upsampling_evenly(init_weights(self.build_generator(cfg)))
        self.D = init_weights(self.build_discriminator(cfg))

    def generate(self, batch: dict, G: nn.Module | None = None) -> Tensor:
        return (G or self.G)(batch["A"])

    def d_terms(self, batch: dict, fake: Tensor):
        A = batch["A"]
        return [("D", self.D, torch.cat([A, batch["B"]], 1), torch.cat([A, fake], 1))]

    def g_terms(self, batch: dict, fake: Tensor):
        lam = self.cfg.train.lambda_l1
        extra = {"G_L1": lam * F.l1_loss(fake.float(), batch["B"])} if lam > 0 else {}
        return [("G_GAN", self.D, torch.cat([batch["A"], fake], 1))], extra

    def preview_batch(self, dataset) -> dict:
        """Four pairs spread over the data set, resized to the crop size (no jitter)."""
        n = len(dataset)
        idx = sorted({round(i * (n - 1) / 3) for i in range(min(4, n))})
        items = [dataset.preview(i) for i in idx]
        return {k: torch.stack([it[k] for it in items]) for k in ("A", "B")}

    def display(self, batch: dict, fake: Tensor) -> list[Tensor]:
        """Columns of the sample grid: input | output | target, as RGB in [0, 1]."""
        A, B, cfg = batch["A"], batch["B"], self.cfg
        L = A if cfg.data.colorization else None
        return [self.to_rgb(A, cfg), self.to_rgb(fake, cfg, L), self.to_rgb(B, cfg, L)]


def halvings(n: int) -> int:
    """How many times n can be halved exactly (the deepest U-Net for size n), at least 2."""
    k = 0
    while n > 1 and n % 2 == 0:
        n //= 2
        k += 1
    return max(k, 2)
