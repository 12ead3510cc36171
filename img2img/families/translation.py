"""What the image-to-image families share (pix2pix, CycleGAN, CUT): image sizes, the choice of
generator (``--netG unet|resnet9|resnet6``), discriminator (``--netD patch|nlayers|pixel``)
and normalisation (``--norm batch|instance|none``), and the RGB-in / RGB-out function that
``translate`` runs and ``export`` writes; :class:`UnpairedTranslation`, what the families
trained on ``--unpaired`` share (CycleGAN, CUT): the data set and ResNet generators by default.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .. import color as colorlib
from ..config import ConfigError, FamilySettings, RunConfig, check_int, check_number, setting
from ..data.io import DataError
from ..nets import MultiscaleDiscriminator, PatchDiscriminator, PixelDiscriminator, ResnetGenerator, UNetGenerator
from ..nets.smallconv import use_matmul_convs
from ..nets.upsample import UPSAMPLING
from .base import Family, Tensor
from .wrappers import PadToMultiple, RGBGenerator

RESNET_BLOCKS = {"resnet9": 9, "resnet6": 6}
MAX_SCALES = 6
DEFAULT_SCALES = 2           # pix2pixHD's default


@dataclass
class TranslationSettings(FamilySettings):
    """The settings of every image-to-image family (each one's own settings class adds to these)."""
    num_d: int | None = setting(None, f"--netD multiscale: how many PatchGANs, at 1, 1/2, 1/4 ... scale (default "
                                      f"{DEFAULT_SCALES})", metavar='N', section="model")
    lambda_feat: float = setting(0.0, "weight of the discriminator feature-matching L1 between real and generated "
                                      "inputs (pix2pixHD uses 10; 0: off)", metavar='L')
    upsample: str = setting("convtranspose", "the decoder's 2x up-sampling: convtranspose (the papers'), resize-conv "
                                             "(nearest 2x + 3x3 conv), pixelshuffle (ICNR-initialised)",
                            choices=UPSAMPLING, section="model")
    d_antialias: bool = setting(False, "blur (3x3 binomial) before each strided convolution of D",
                                section="model")

    def validate(self) -> None:
        super().validate()
        if self.num_d is not None:
            check_int("num-d", self.num_d, 1, MAX_SCALES)
        check_number("lambda-feat", self.lambda_feat, 0.0, math.inf, why=" (0: off)")
        if self.upsample not in UPSAMPLING:
            raise ConfigError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {self.upsample!r}")


class Translation(Family):
    settings = TranslationSettings
    conditional = True
    validates = True
    size_flag = "--crop-size"
    inference_note = "normalisation by each image's own statistics, dropout off"

    # -- configuration ----------------------------------------------------------------
    @classmethod
    def default_netG(cls, cfg: RunConfig) -> str:
        return "unet"

    @classmethod
    def configure(cls, cfg: RunConfig, given: set[str]) -> None:
        """image_size is the crop size; the U-Net goes down to 1x1 at that size (at most 8 levels)."""
        m, d = cfg.model, cfg.data
        if "image_size" not in given:
            m.image_size = d.crop_size
        if "netG" not in given:
            m.netG = cls.default_netG(cfg)
        if "depth" not in given:
            m.depth = min(8, halvings(m.image_size))

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        m = cfg.model
        if m.netG == "unet":
            if m.depth < 2:
                raise ConfigError(f"depth must be at least 2 (the U-Net needs two levels), got {m.depth}")
            if m.image_size % (2 ** m.depth):
                raise ConfigError(
                    f"image size {m.image_size} is not a multiple of 2^depth = {2 ** m.depth}; use --crop-size "
                    f"{2 ** m.depth * max(1, round(m.image_size / 2 ** m.depth))} or a smaller --depth")
        elif m.image_size % 4:
            raise ConfigError(f"image size {m.image_size} is not a multiple of 4, which the {m.netG} generator "
                              f"needs; use --crop-size {4 * max(1, round(m.image_size / 4))}")
        f = cfg.family
        if f.num_d is not None and m.netD != "multiscale":
            raise ConfigError(f"--num-d is the number of scales of --netD multiscale, not of --netD {m.netD}")
        scales = cls.scales(cfg)
        smallest = math.ceil(m.image_size / 2 ** (scales - 1))      # 3x3 average pooling, stride 2, padding 1
        if m.netD != "pixel" and smallest // 2 ** m.d_layers < 3:
            # PatchGAN: d_layers halvings, then two 4x4 convs that take 1 pixel each
            if scales > 1 and m.image_size // 2 ** m.d_layers >= 3:
                raise ConfigError(f"--num-d {scales} is too many for {m.image_size}x{m.image_size} images with "
                                  f"d-layers {m.d_layers}: the coarsest PatchGAN would see {smallest}x{smallest}")
            most = max((k for k in range(1, m.d_layers) if m.image_size // 2 ** k >= 3), default=0)
            raise ConfigError(f"d-layers {m.d_layers} is too many for {m.image_size}x{m.image_size} images: the "
                              f"PatchGAN needs at least 3x3 left after its strided layers "
                              + (f"(at most {most} here)" if most else "(use a larger image size)"))
        if f.d_antialias and m.netD == "pixel":
            raise ConfigError("--d-antialias is for the PatchGANs; the 1x1 --netD pixel has no strided convolution")
        if not cfg.data.colorization and (m.input_nc not in (1, 3) or m.output_nc not in (1, 3)):
            raise ConfigError(f"{cls.name} works on gray (1) or RGB (3) channels, got input-nc {m.input_nc}, "
                              f"output-nc {m.output_nc}")

    # -- networks ---------------------------------------------------------------------
    @classmethod
    def generator(cls, cfg: RunConfig, input_nc: int, output_nc: int) -> nn.Module:
        """The ``--netG`` network from input_nc to output_nc channels."""
        m, up = cfg.model, cfg.family.upsample
        if m.netG == "unet":
            G = UNetGenerator(input_nc, output_nc, m.ngf, m.depth, m.dropout, norm=m.norm, upsample=up)
            return use_matmul_convs(G) if cfg.train.cpu_matmul else G
        return ResnetGenerator(input_nc, output_nc, m.ngf, RESNET_BLOCKS[m.netG], m.norm, m.dropout, upsample=up)

    @classmethod
    def scales(cls, cfg: RunConfig) -> int:
        """How many scales the discriminator judges (1 unless ``--netD multiscale``)."""
        if cfg.model.netD != "multiscale":
            return 1
        return cfg.family.num_d if cfg.family.num_d is not None else DEFAULT_SCALES

    @classmethod
    def discriminator(cls, cfg: RunConfig, input_nc: int) -> nn.Module:
        """The ``--netD`` network on input_nc channels: patch = nlayers = PatchGAN with d_layers
        strided layers (3: 70x70 patches), pixel = 1x1 PatchGAN, multiscale = ``--num-d`` PatchGANs."""
        m, f = cfg.model, cfg.family
        if m.netD == "pixel":
            return PixelDiscriminator(input_nc, m.ndf, m.norm)
        if m.netD == "multiscale":
            return MultiscaleDiscriminator(input_nc, m.ndf, m.d_layers, m.norm, cls.scales(cfg), f.d_antialias)
        return PatchDiscriminator(input_nc, m.ndf, m.d_layers, m.norm, f.d_antialias)

    @classmethod
    def size_multiple(cls, cfg: RunConfig) -> int:
        return 2 ** cfg.model.depth if cfg.model.netG == "unet" else 4

    @property
    def lambda_feat(self) -> float:
        """The weight of D feature matching (``--lambda-feat``; the trainer adds the term)."""
        return self.cfg.family.lambda_feat

    # -- using a trained generator ----------------------------------------------------
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
    def select(cls, G: nn.Module, cfg: RunConfig, direction: str | None) -> tuple[nn.Module, int]:
        """(the generator translating ``direction``, its input channels)."""
        raise NotImplementedError

    @classmethod
    def holdout(cls, cfg: RunConfig) -> dict:
        """The data set arguments that leave ``--val-split``'s held-out files out of training."""
        return {"holdout": cfg.data.val_split, "part": "train"} if cfg.data.val_split > 0 else {}

    @classmethod
    def network_scale(cls, cfg: RunConfig) -> float | None:
        """The factor from an L1 distance between network outputs to one on eval's [0, 1] RGB scale
        (None where none exists: Lab, colorization)."""
        return 0.5 if cfg.data.color == "rgb" and not cfg.data.colorization else None

    @classmethod
    def inference_module(cls, G: nn.Module, cfg: RunConfig, direction: str | None = None) -> nn.Module:
        net, input_nc = cls.select(G, cfg, direction)
        return RGBGenerator(net, cfg, input_nc=input_nc).eval()

    @classmethod
    def export_module(cls, G: nn.Module, cfg: RunConfig, direction: str | None = None) -> nn.Module:
        """The inference module taking any H and W: padded to ``size_multiple`` and cropped back."""
        return PadToMultiple(cls.inference_module(G, cfg, direction), cls.size_multiple(cfg)).eval()

    def preview_batch(self, dataset) -> dict:
        """Up to four items spread over the data set ({"A", "B"}), resized to the crop size (no jitter).
        A file that no longer decodes (it changed since the start) gives way to the next one."""
        n, k = len(dataset), min(4, len(dataset))
        items, error = [], None
        for start in sorted({round(i * (n - 1) / max(1, k - 1)) for i in range(k)}):
            for i in range(start, n):
                try:
                    items.append(dataset.preview(i))
                    break
                except DataError as e:
                    error = error or e
        if not items:
            raise error
        return {key: torch.stack([it[key] for it in items]) for key in ("A", "B")}

    @classmethod
    def example_inputs(cls, cfg: RunConfig, seed: int = 0) -> list[Tensor]:
        """Two batch sizes and three spatial sizes: one not square, and one not a multiple of
        ``size_multiple`` (the exported graph takes any size)."""
        g = torch.Generator().manual_seed(seed)
        s, k = cfg.model.image_size, cls.size_multiple(cfg)
        return [torch.rand(2, 3, s, s, generator=g), torch.rand(1, 3, k * max(1, s // k // 2), s + k, generator=g),
                torch.rand(1, 3, s + 7, max(1, s - 9), generator=g)]


class UnpairedTranslation(Translation):
    data = "unpaired"
    defaults = {"objective": "lsgan", "norm": "instance", "dropout": 0.0}     # as in the CycleGAN and CUT papers

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        super().check(cfg)
        m, d = cfg.model, cfg.data
        if d.colorization:
            raise ConfigError("--colorization is for pix2pix (--pairs), not for unpaired training")
        if d.color == "lab" and (m.input_nc != 3 or m.output_nc != 3):
            raise ConfigError("--color lab needs 3-channel input and output")

    @classmethod
    def default_netG(cls, cfg: RunConfig) -> str:
        return "resnet9" if cfg.model.image_size >= 256 else "resnet6"

    @classmethod
    def dataset(cls, cfg: RunConfig, train: bool = True):
        from ..data.unpaired import UnpairedDataset
        d, m = cfg.data, cfg.model
        return UnpairedDataset(d.unpaired, input_nc=m.input_nc, output_nc=m.output_nc, load_size=d.load_size,
                               crop_size=d.crop_size, resize=d.resize, crop=d.crop, flip=d.flip, color=d.color,
                               skip_bad=d.skip_bad, cache=d.cache, divisor=cls.size_multiple(cfg),
                               seed=cfg.train.seed, train=train, **cls.holdout(cfg))

    @classmethod
    def domain_images(cls, root, side: int):
        """The images of domain ``side`` (0: A/, 1: B/) under ``root`` as ``input_images`` gives them:
        (how many, i -> uint8 RGB), bad files skipped."""
        from ..data.unpaired import UnpairedDataset
        ds = UnpairedDataset(root, input_nc=3, output_nc=3, cache=False, train=False, skip_bad=True)
        return len(ds.files[side]), lambda i: ds.raw(side, i)


def halvings(n: int) -> int:
    """How many times n can be halved exactly (the deepest U-Net for size n), at least 2."""
    k = 0
    while n > 1 and n % 2 == 0:
        n //= 2
        k += 1
    return max(k, 2)
