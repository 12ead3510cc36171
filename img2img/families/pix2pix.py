"""pix2pix (Isola et al., 2017): a conditional GAN on aligned pairs.

G(A) -> B with the U-Net (or ``--netG resnet9|resnet6``); D is the 70x70
PatchGAN (or ``--netD``) on the channel concatenation cat(A, B) (real) or
cat(A, G(A)) (generated); G minimises the GAN term plus λ·L1(G(A), B).  D's
loss is halved, as in the paper.  Trains on ``--pairs``.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from dataclasses import dataclass

from ..config import ConfigError, RunConfig, check_number, setting
from ..nets import init_weights
from ..nets.init import init_upsampling_evenly
from .base import Tensor
from .translation import Translation, TranslationSettings


@dataclass
class Pix2PixSettings(TranslationSettings):
    lambda_l1: float = setting(100.0, "weight of the L1 term", metavar='L')

    def validate(self) -> None:
        super().validate()
        check_number("lambda-l1", self.lambda_l1, 0.0, math.inf, why=" (0: no L1 term)")


class Pix2Pix(Translation):
    name = "pix2pix"
    settings = Pix2PixSettings
    data = "pairs"
    loss_names = ("D", "G_GAN", "G_L1", "G_feat", "D_real", "D_fake")
    d_loss_scale = 0.5

    # -- configuration and networks ---------------------------------------------------
    @classmethod
    def configure(cls, cfg: RunConfig, given: set[str]) -> None:
        """As every translation family; --colorization means a 1-channel (L) input and a 2-channel (ab) output."""
        super().configure(cfg, given)
        m, d = cfg.model, cfg.data
        if d.colorization:
            if "input_nc" not in given:
                m.input_nc = 1
            if "output_nc" not in given:
                m.output_nc = 2

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        super().check(cfg)
        m, d = cfg.model, cfg.data
        if d.colorization and (m.input_nc, m.output_nc) != (1, 2):
            raise ConfigError("--colorization uses a 1-channel (L) input and a 2-channel (ab) output")
        if d.color == "lab" and not d.colorization and (m.input_nc != 3 or m.output_nc != 3):
            raise ConfigError("--color lab needs 3-channel input and output")
        if d.val is not None and d.pairs is not None and Path(d.val).resolve() == Path(d.pairs).resolve():
            raise ConfigError(f"--val {d.val} is the training folder itself; hold pairs out with --val-split F, "
                              "or give a separate folder")

    @classmethod
    def build_generator(cls, cfg: RunConfig) -> nn.Module:
        return cls.generator(cfg, cfg.model.input_nc, cfg.model.output_nc)

    @classmethod
    def build_discriminator(cls, cfg: RunConfig) -> nn.Module:
        """D sees the pair: input and output channels concatenated."""
        return cls.discriminator(cfg, cfg.model.input_nc + cfg.model.output_nc)

    @classmethod
    def dataset(cls, cfg: RunConfig, train: bool = True):
        from ..data.paired import PairedDataset
        d, m = cfg.data, cfg.model
        return PairedDataset(d.pairs, direction=d.direction, input_nc=m.input_nc, output_nc=m.output_nc,
                             load_size=d.load_size, crop_size=d.crop_size, resize=d.resize, crop=d.crop,
                             flip=d.flip, color=d.color, colorization=d.colorization, skip_bad=d.skip_bad,
                             cache=d.cache, divisor=cls.size_multiple(cfg), seed=cfg.train.seed, train=train,
                             **cls.holdout(cfg))

    @classmethod
    def validation_sets(cls, cfg: RunConfig) -> list:
        """The --val pairs, or the pairs --val-split holds out, scored like ``img2img eval`` does."""
        from ..data import holdout
        d, m = cfg.data, cfg.model
        if not d.validation():
            return []
        common = dict(direction=d.direction, size=m.image_size, colorization=d.colorization,
                      gray_target=m.output_nc == 1 and not d.colorization)
        if d.val is not None:
            return [holdout.paired(d.val, **common)]
        return [holdout.paired(d.pairs, fraction=d.val_split, seed=cfg.train.seed, part="val", **common)]

    @classmethod
    def validation_label(cls, cfg: RunConfig, sets: list) -> str:
        n = sum(len(s) for s in sets)
        return f"G(A) vs B on {n} held-out pairs ({cfg.data.direction}), as img2img eval scores them"

    @classmethod
    def loss_axes(cls, cfg: RunConfig) -> dict[str, tuple[str, float | None, str]]:
        lam, scale = cfg.family.lambda_l1, cls.network_scale(cfg)
        return {**super().loss_axes(cfg), "D": ("D loss: ½·BCE(real, fake pairs)", None, ""),
                "G_L1": (f"G_L1 = λ·L1(G(A), B), λ = {lam:g}", scale / lam if scale and lam else None,
                         "L1 on eval's [0, 1] RGB scale")}

    @classmethod
    def directions(cls, cfg: RunConfig) -> tuple[str, ...]:
        """A pix2pix model translates one way: the direction it was trained in."""
        return (cfg.data.direction,)

    @classmethod
    def input_images(cls, cfg: RunConfig, root, direction: str):
        """The input sides (after ``direction``) of the pairs under ``root``, RGB (bad files skipped)."""
        from ..data.paired import PairedDataset
        ds = PairedDataset(root, direction=direction, colorization=cfg.data.colorization, input_nc=3, output_nc=3,
                           cache=False, train=False, skip_bad=True)
        return len(ds), lambda i: ds.raw(i)[0]

    @classmethod
    def select(cls, G: nn.Module, cfg: RunConfig, direction: str | None) -> tuple[nn.Module, int]:
        return G, cfg.model.input_nc

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
        lam = self.cfg.family.lambda_l1
        extra = {"G_L1": lam * F.l1_loss(fake.float(), batch["B"])} if lam > 0 else {}
        A = batch["A"]
        return [("G_GAN", self.D, torch.cat([A, fake], 1), torch.cat([A, batch["B"]], 1))], extra

    def display(self, batch: dict, fake: Tensor) -> list[Tensor]:
        """Columns of the sample grid: input | output | target, as RGB in [0, 1]."""
        A, B, cfg = batch["A"], batch["B"], self.cfg
        L = A if cfg.data.colorization else None
        return [self.to_rgb(A, cfg), self.to_rgb(fake, cfg, L), self.to_rgb(B, cfg, L)]

