"""CycleGAN (Zhu et al., 2017): translation between two domains without aligned pairs.

Two generators and two discriminators, named as in the CycleGAN code so that its
users read the logs the same way:

* ``G_A``: A -> B and ``G_B``: B -> A (the checkpoint's ``G`` holds both, under
  ``A.`` and ``B.``; ``translate --direction AtoB`` runs G_A, ``BtoA`` G_B);
* ``D_A`` judges G_A's outputs against real B images, ``D_B`` judges G_B's
  outputs against real A images.

Generator objective: the adversarial terms ``G_A`` and ``G_B`` (LSGAN by default),
plus ``cycle`` = λ·(|G_B(G_A(A)) − A| + |G_A(G_B(B)) − B|) (λ = ``--lambda-cycle``,
10), plus ``idt`` = λ·λ_idt·(|G_A(B) − B| + |G_B(A) − A|) (λ_idt =
``--lambda-identity``, 0.5; 0 turns it off), all L1 means.  Each discriminator is
shown a generated image drawn from a history of the last ``--pool-size`` (50) of
them (Shrivastava et al.), half of the time an older one.  Trains on ``--unpaired``
(A/ and B/, or trainA/ and trainB/).  Defaults as in the paper: ResNet generators
(9 blocks at 256², 6 below), instance norm, no dropout.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import MAX_POOL, ConfigError, RunConfig, check_int, check_number, setting
from .base import Tensor
from .translation import TranslationSettings, UnpairedTranslation

KEYS = {"AtoB": "A", "BtoA": "B"}          # direction -> the generator that translates it


@dataclass
class CycleGANSettings(TranslationSettings):
    lambda_cycle: float = setting(10.0, "weight of each cycle-consistency L1 term", metavar='L')
    lambda_identity: float = setting(0.5, "identity loss weight, as a fraction of --lambda-cycle (0: off)",
                                     metavar='F')
    pool_size: int = setting(50, "generated images kept to show each discriminator (0: no history)",
                             metavar='N')

    def validate(self) -> None:
        super().validate()
        check_number("lambda-cycle", self.lambda_cycle, 0.0, math.inf)
        check_number("lambda-identity", self.lambda_identity, 0.0, math.inf,
                     why=" (a fraction of lambda-cycle; 0: off)")
        check_int("pool-size", self.pool_size, 0, MAX_POOL, " (0: no history pool)")


class CycleGAN(UnpairedTranslation):
    name = "cyclegan"
    settings = CycleGANSettings
    loss_names = ("D_A", "D_B", "G_A", "G_B", "cycle", "idt", "G_feat", "D_real", "D_fake")
    d_loss_scale = 0.5

    # -- configuration and networks ---------------------------------------------------
    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        super().check(cfg)
        m, d, t = cfg.model, cfg.data, cfg.family
        if d.direction != "AtoB":
            raise ConfigError("CycleGAN trains both directions at once; drop --direction (translate and "
                              "export pick one with their own --direction)")
        if t.lambda_identity > 0 and m.input_nc != m.output_nc:
            raise ConfigError(f"the identity loss needs as many input as output channels ({m.input_nc} vs "
                              f"{m.output_nc}); use --lambda-identity 0")

    @classmethod
    def build_generator(cls, cfg: RunConfig) -> nn.Module:
        m = cfg.model
        return nn.ModuleDict({"A": cls.generator(cfg, m.input_nc, m.output_nc),
                              "B": cls.generator(cfg, m.output_nc, m.input_nc)})

    @classmethod
    def build_discriminator(cls, cfg: RunConfig) -> nn.Module:
        m = cfg.model
        return nn.ModuleDict({"A": cls.discriminator(cfg, m.output_nc), "B": cls.discriminator(cfg, m.input_nc)})

    @classmethod
    def validation_sets(cls, cfg: RunConfig) -> list:
        """What validation scores, like ``img2img eval`` (see the README's "Validation and logging"):

        * ``--val DIR`` holding pairs (AB files, or A/ and B/ with matching names): every pair both
          ways, G_A(a) against b and G_B(b) against a (``val_AtoB_l1``, ``val_BtoA_l1`` ...);
        * ``--val DIR`` holding two domains (testA/ and testB/, A/ and B/, trainA/ and trainB/), and
          ``--val-split F`` (each domain's share of ``--unpaired``): the cycle reconstruction of every
          image, G_B(G_A(a)) against a and G_A(G_B(b)) against b (``val_A_l1``, ``val_B_l1`` ...).
        """
        from ..data import holdout
        from ..data.unpaired import VAL_DOMAIN_FOLDERS, find_domains
        d, m = cfg.data, cfg.model
        if not d.validation():
            return []
        size = m.image_size
        if d.val is None:
            return holdout.cycles(d.unpaired, size=size, channels=(m.input_nc, m.output_nc), fraction=d.val_split,
                                  seed=cfg.train.seed, part="val")
        if d.unpaired is not None and Path(d.val).resolve() == Path(d.unpaired).resolve():
            dirs = find_domains(d.val, VAL_DOMAIN_FOLDERS, option="--val")
            if dirs == find_domains(d.unpaired):         # no testA/ and testB/ beside trainA/ and trainB/
                raise ConfigError(f"--val {d.val}: {dirs[0].name}/ and {dirs[1].name}/ are the training images "
                                  "themselves; hold images out with --val-split F, or give a folder with testA/ "
                                  "and testB/ (or A/ and B/)")
        if holdout.holds_pairs(d.val):
            return holdout.both_ways(d.val, size=size, gray=(m.input_nc == 1, m.output_nc == 1))
        dirs = find_domains(d.val, VAL_DOMAIN_FOLDERS, option="--val")
        return holdout.cycles(d.val, size=size, channels=(m.input_nc, m.output_nc), dirs=dirs)

    @classmethod
    def validation_label(cls, cfg: RunConfig, sets: list) -> str:
        if [s.label for s in sets] == ["AtoB", "BtoA"]:
            return (f"{len(sets[0])} held-out pairs scored both ways: G_A(a) vs b (AtoB) and G_B(b) vs a (BtoA), "
                    "as img2img eval --direction scores them")
        counts = " and ".join(f"{len(s)} {s.label}" for s in sets)
        return (f"cycle reconstruction of {counts} held-out images: G_B(G_A(a)) vs a (A) and G_A(G_B(b)) vs b (B), "
                "scored like img2img eval")

    @classmethod
    def loss_axes(cls, cfg: RunConfig) -> dict[str, tuple[str, float | None, str]]:
        t, scale = cfg.family, cls.network_scale(cfg)
        lam, idt = t.lambda_cycle, t.lambda_cycle * t.lambda_identity
        return {**super().loss_axes(cfg),
                "D_A": ("D_A loss (G_A's fakes vs real B)", None, ""), "D_B": ("D_B loss (G_B's fakes vs real A)", None, ""),
                "G_A": ("G_A adversarial loss", None, ""), "G_B": ("G_B adversarial loss", None, ""),
                "cycle": (f"cycle = λ·(L1 A→B→A + L1 B→A→B), λ = {lam:g}", scale / (2 * lam) if scale and lam else None,
                          "mean cycle L1 on a [0, 1] scale"),
                "idt": (f"idt = {idt:g}·(L1 G_A(b), b + L1 G_B(a), a)", scale / (2 * idt) if scale and idt else None,
                        "mean identity L1 on a [0, 1] scale")}

    @classmethod
    def directions(cls, cfg: RunConfig) -> tuple[str, ...]:
        return tuple(KEYS)

    @classmethod
    def input_images(cls, cfg: RunConfig, root, direction: str):
        """The images of the domain ``direction`` translates from (A/ for AtoB, B/ for BtoA) under ``root``."""
        return cls.domain_images(root, "AB".index(KEYS[direction]))

    @classmethod
    def select(cls, G: nn.Module, cfg: RunConfig, direction: str | None) -> tuple[nn.Module, int]:
        direction = direction or "AtoB"
        if direction not in KEYS:
            raise ConfigError(f"direction must be AtoB or BtoA, got {direction!r}")
        return G[KEYS[direction]], cfg.model.input_nc if direction == "AtoB" else cfg.model.output_nc

    # -- training -----------------------------------------------------------------------
    def __init__(self, cfg: RunConfig):
        super().__init__(cfg)
        self.pools = {"A": ImagePool(cfg.family.pool_size), "B": ImagePool(cfg.family.pool_size)}

    def generate(self, batch: dict, G: nn.Module | None = None) -> dict[str, Tensor]:
        """fake_B = G_A(A), rec_A = G_B(fake_B), and the same from B; identity images while training."""
        G = G if G is not None else self.G
        A, B = batch["A"], batch["B"]
        out = {"fake_B": G["A"](A), "fake_A": G["B"](B)}
        out["rec_A"], out["rec_B"] = G["B"](out["fake_B"]), G["A"](out["fake_A"])
        if G.training and self.cfg.family.lambda_identity > 0:
            out["idt_B"], out["idt_A"] = G["A"](B), G["B"](A)
        return out

    def d_terms(self, batch: dict, fakes: dict[str, Tensor]):
        return [("D_A", self.D["A"], batch["B"], self.pools["A"].query(fakes["fake_B"])),
                ("D_B", self.D["B"], batch["A"], self.pools["B"].query(fakes["fake_A"]))]

    def g_terms(self, batch: dict, fakes: dict[str, Tensor]):
        t, A, B = self.cfg.family, batch["A"], batch["B"]
        extra = {"cycle": t.lambda_cycle * (F.l1_loss(fakes["rec_A"].float(), A) + F.l1_loss(fakes["rec_B"].float(), B))}
        if "idt_B" in fakes:
            extra["idt"] = t.lambda_cycle * t.lambda_identity * (F.l1_loss(fakes["idt_B"].float(), B)
                                                                 + F.l1_loss(fakes["idt_A"].float(), A))
        return [("G_A", self.D["A"], fakes["fake_B"], B), ("G_B", self.D["B"], fakes["fake_A"], A)], extra

    def display(self, batch: dict, fakes: dict[str, Tensor]) -> list[Tensor]:
        """Columns: real | translated | reconstructed; rows: the A images (real A, fake B, rec A), then
        the B images (real B, fake A, rec B)."""
        rgb = lambda x: self.to_rgb(x, self.cfg)                                   # noqa: E731
        return [torch.cat([rgb(batch["A"]), rgb(batch["B"])]), torch.cat([rgb(fakes["fake_B"]), rgb(fakes["fake_A"])]),
                torch.cat([rgb(fakes["rec_A"]), rgb(fakes["rec_B"])])]

    def state_dict(self) -> dict:
        return {"pools": {k: p.state_dict() for k, p in self.pools.items()}}

    def load_state_dict(self, state: dict) -> None:
        for k, s in (state.get("pools") or {}).items():
            self.pools[k].load_state_dict(s)


class ImagePool:
    """The last ``size`` generated images (Shrivastava et al., 2017).  :meth:`query` returns, per image
    of a batch, the image itself while the pool fills up; then, with probability 1/2, a stored image
    (replaced by the new one) and otherwise the new image.  Random choices use torch's global
    generator, so they are part of a checkpoint's random state."""

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[Tensor] = []

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        if self.size <= 0:
            return images
        out = []
        for img in images.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(1).item() < 0.5:
                k = int(torch.randint(0, self.size, (1,)).item())
                out.append(self.images[k].to(img.device))       # stored images come back on the CPU after a resume
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.cat(out)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": [x.cpu() for x in self.images]}

    def load_state_dict(self, state: dict) -> None:
        self.images = list(state.get("images") or [])
