"""CUT and FastCUT (Park, Efros, Zhang and Zhu, ECCV 2020): one-sided unpaired translation by
contrastive learning.

One generator G: A -> B (a ResNet generator, ``--netG resnet9|resnet6``) and one PatchGAN D on B.
Besides the adversarial term, G minimises PatchNCE (:mod:`img2img.nets.patchnce`): G's own encoder
reads the input a and the output G(a) at five layers (pixels, the two down-sampling stages, the
first and fifth residual blocks); at ``--nce-patches`` (256) random places per layer, a small MLP
head H (part of the checkpoint's ``G``, under ``head.``; translate and export use ``net.`` only)
embeds both, and each output patch must pick out the input patch at its own place among the other
places of the same image.  CUT adds the same term on b and G(b) (identity PatchNCE, λ_Y), which
keeps G from changing what is already in domain B.

Generator objective: GAN + λ_X·PatchNCE(a, G(a)) + λ_Y·PatchNCE(b, G(b)), as in the paper (which
writes the two terms as a sum).  Defaults (the paper's): LSGAN, instance norm, no dropout, Adam
2e-4 (0.5, 0.999), batch 1, τ = 0.07, 256 patches per layer; CUT λ_X = λ_Y = 1; FastCUT λ_X = 10,
λ_Y = 0.  Not taken from the paper's code: its flip-equivariance augmentation for FastCUT and its
anti-aliased down-sampling.  Trains on ``--unpaired`` (A/ and B/, or trainA/ and trainB/).

Validation while training needs held-out pairs (``--val DIR`` in a ``--pairs`` layout: G(a) is
scored against b); a one-sided model has no cycle to score on unpaired images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..config import ConfigError, RunConfig, check_int, check_number, setting
from ..nets.patchnce import PatchHead, patch_nce, sample_places
from ..nets.resnet import encode, encoder_taps
from .base import Tensor
from .translation import TranslationSettings, UnpairedTranslation

MAX_PATCHES = 65536            # places per layer (a 256² map has 65,536)


@dataclass
class CUTSettings(TranslationSettings):
    lambda_nce: float = setting(1.0, "λ_X, weight of PatchNCE between a and G(a)", metavar='L')
    lambda_nce_idt: float = setting(1.0, "λ_Y, weight of the identity PatchNCE between b and G(b) (0: off)",
                                    metavar='L')
    nce_patches: int = setting(256, "places sampled per encoder layer for PatchNCE", metavar='N')
    nce_tau: float = setting(0.07, "PatchNCE temperature", metavar='T')

    def validate(self) -> None:
        super().validate()
        check_number("lambda-nce", self.lambda_nce, 0.0, math.inf)
        check_number("lambda-nce-idt", self.lambda_nce_idt, 0.0, math.inf, why=" (0: off)")
        check_int("nce-patches", self.nce_patches, 2, MAX_PATCHES, " (PatchNCE needs negatives)")
        check_number("nce-tau", self.nce_tau, 0.0, math.inf, low_open=True)


class CUT(UnpairedTranslation):
    name = "cut"
    settings = CUTSettings
    loss_names = ("D", "G_GAN", "NCE", "NCE_Y", "G_feat", "D_real", "D_fake")
    d_loss_scale = 0.5

    # -- configuration and networks ---------------------------------------------------
    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        super().check(cfg)
        m, d = cfg.model, cfg.data
        if m.netG not in ("resnet9", "resnet6"):
            raise ConfigError(f"{cls.name} reads the ResNet generator's encoder for PatchNCE: --netG resnet9 or "
                              f"resnet6, not {m.netG}")
        if m.input_nc != m.output_nc:
            raise ConfigError(f"{cls.name} runs G's encoder on its own outputs too, so it needs as many input as "
                              f"output channels ({m.input_nc} vs {m.output_nc})")
        if d.direction != "AtoB":
            raise ConfigError(f"{cls.name} translates A -> B; to learn B -> A, swap the A/ and B/ folders")
        if d.val_split > 0:
            raise ConfigError(f"{cls.name} translates one way and has no cycle to score unpaired images on: "
                              "validation needs held-out pairs, --val DIR (AB files, or A/ and B/ with matching "
                              "names)")
        if d.val is not None and Path(d.val).is_dir():         # (a stored config's folder may be gone: fine)
            cls.check_val_pairs(d.val)

    @classmethod
    def check_val_pairs(cls, val) -> None:
        from ..data import holdout
        if not holdout.holds_pairs(val):
            raise ConfigError(f"--val {val}: holds two domains, not pairs; {cls.name} translates one way and "
                              "has no cycle to score unpaired images on: give held-out pairs (AB files, or A/ and "
                              "B/ with matching names)")

    @classmethod
    def build_generator(cls, cfg: RunConfig) -> nn.Module:
        """``net``: the ResNet generator A -> B; ``head``: PatchNCE's MLPs, one per encoder tap."""
        m = cfg.model
        net = cls.generator(cfg, m.input_nc, m.output_nc)
        return nn.ModuleDict({"net": net, "head": PatchHead([c for _, c in encoder_taps(net)])})

    @classmethod
    def build_discriminator(cls, cfg: RunConfig) -> nn.Module:
        return cls.discriminator(cfg, cfg.model.output_nc)

    @classmethod
    def validation_sets(cls, cfg: RunConfig) -> list:
        """The pairs of ``--val DIR`` (any ``--pairs`` layout), G(a) against b, as ``img2img eval`` scores them."""
        from ..data import holdout
        d, m = cfg.data, cfg.model
        if d.val is None:
            return []
        return [holdout.paired(d.val, direction="AtoB", size=m.image_size, gray_target=m.output_nc == 1)]

    @classmethod
    def validation_label(cls, cfg: RunConfig, sets: list) -> str:
        return f"G(a) vs b on {sum(len(s) for s in sets)} held-out pairs, as img2img eval scores them"

    @classmethod
    def loss_axes(cls, cfg: RunConfig) -> dict[str, tuple[str, float | None, str]]:
        f = cfg.family
        return {**super().loss_axes(cfg), "D": ("D loss: ½·(real b, fake G(a))", None, ""),
                "NCE": (f"NCE = λ_X·PatchNCE(a, G(a)), λ_X = {f.lambda_nce:g}", None, ""),
                "NCE_Y": (f"NCE_Y = λ_Y·PatchNCE(b, G(b)), λ_Y = {f.lambda_nce_idt:g}", None, "")}

    @classmethod
    def directions(cls, cfg: RunConfig) -> tuple[str, ...]:
        return ("AtoB",)

    @classmethod
    def input_images(cls, cfg: RunConfig, root, direction: str):
        return cls.domain_images(root, 0)

    @classmethod
    def select(cls, G: nn.Module, cfg: RunConfig, direction: str | None) -> tuple[nn.Module, int]:
        if direction not in (None, "AtoB"):
            raise ConfigError(f"a {cls.name} model translates AtoB only, not {direction}")
        return G["net"], cfg.model.input_nc

    # -- training -----------------------------------------------------------------------
    def __init__(self, cfg: RunConfig):
        super().__init__(cfg)
        self.taps = encoder_taps(self.G["net"])

    def generate(self, batch: dict, G: nn.Module | None = None) -> dict[str, Tensor]:
        """fake_B = G(A); with identity PatchNCE also idt_B = G(B) (one pass over both)."""
        net = (G if G is not None else self.G)["net"]
        A = batch["A"]
        if self.cfg.family.lambda_nce_idt > 0:
            out = net(torch.cat([A, batch["B"]]))
            return {"fake_B": out[:len(A)], "idt_B": out[len(A):]}
        return {"fake_B": net(A)}

    def nce(self, real: Tensor, fake: Tensor) -> Tensor:
        """PatchNCE between ``real`` and G's output ``fake`` on the encoder taps, mean over the layers."""
        net, head, n = self.G["net"], self.G["head"], self.cfg.family.nce_patches
        feats_q = encode(net, fake, self.taps)
        places = sample_places(feats_q, n)
        with torch.no_grad():                  # the keys are targets: PatchNCE does not differentiate them
            k = head(encode(net, real, self.taps), places)
        q = head(feats_q, places)
        return sum(patch_nce(a, b, self.cfg.family.nce_tau) for a, b in zip(q, k)) / len(q)

    def d_terms(self, batch: dict, fakes: dict[str, Tensor]):
        return [("D", self.D, batch["B"], fakes["fake_B"])]

    def g_terms(self, batch: dict, fakes: dict[str, Tensor]):
        f = self.cfg.family
        extra = {}
        if f.lambda_nce > 0:
            extra["NCE"] = f.lambda_nce * self.nce(batch["A"], fakes["fake_B"])
        if "idt_B" in fakes:
            extra["NCE_Y"] = f.lambda_nce_idt * self.nce(batch["B"], fakes["idt_B"])
        return [("G_GAN", self.D, fakes["fake_B"], batch["B"])], extra

    def display(self, batch: dict, fakes: dict[str, Tensor]) -> list[Tensor]:
        """Columns: real A | G(A) | real B, and G(B) with identity PatchNCE."""
        rgb = lambda x: self.to_rgb(x, self.cfg)                                   # noqa: E731
        cols = [rgb(batch["A"]), rgb(fakes["fake_B"]), rgb(batch["B"])]
        return cols + ([rgb(fakes["idt_B"])] if "idt_B" in fakes else [])


class FastCUT(CUT):
    """CUT without identity PatchNCE and with λ_X = 10: about half CUT's work per step."""
    name = "fastcut"
    defaults = {**CUT.defaults, "lambda_nce": 10.0, "lambda_nce_idt": 0.0}
