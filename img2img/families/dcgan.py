"""DCGAN (Radford et al., 2016): all-convolutional G and D, trained from noise on ``--images``.

``--d-spectral-norm`` (Miyato et al., 2018) builds D without BatchNorm and divides
each of its convolution weights by its largest singular value instead.
"""
from __future__ import annotations

import torch.nn as nn

from dataclasses import dataclass

from ..config import ConfigError, RunConfig, setting
from ..nets.dcgan import SIZES, DCGANDiscriminator, DCGANGenerator, spectral_normalize
from .unconditional import NoiseSettings, Unconditional


@dataclass
class DCGANSettings(NoiseSettings):
    d_spectral_norm: bool = setting(False, "spectral normalisation of D's layers, in place of BatchNorm in D",
                                    section="model")


class DCGAN(Unconditional):
    name = "dcgan"
    settings = DCGANSettings
    # narrower than the paper's 64 and with a weight EMA: measured on MNIST at 32x32 on 2 CPU cores,
    # 10 minutes of this beats 10 minutes of the paper's widths clearly (README, "Unconditional GANs")
    defaults = {**Unconditional.defaults, "image_size": 64, "ngf": 32, "ndf": 32, "batch_size": 32, "g_ema": 0.999}

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        super().check(cfg)
        if cfg.model.image_size not in SIZES:
            raise ConfigError(f"DCGAN image size must be one of {', '.join(map(str, SIZES))}, "
                              f"got {cfg.model.image_size} (--size)")

    @classmethod
    def build_generator(cls, cfg: RunConfig) -> nn.Module:
        m = cfg.model
        return DCGANGenerator(cfg.family.z_dim, m.output_nc, m.ngf, m.image_size)

    @classmethod
    def build_discriminator(cls, cfg: RunConfig) -> nn.Module:
        m = cfg.model
        return DCGANDiscriminator(m.output_nc, m.ndf, m.image_size, batchnorm=not cfg.family.d_spectral_norm)

    def __init__(self, cfg: RunConfig):
        """G and D initialised N(0, 0.02); with --d-spectral-norm, D's convolutions are then
        spectrally normalised (the parametrisation starts from the initialised weights)."""
        super().__init__(cfg)
        if cfg.family.d_spectral_norm:
            self.D = spectral_normalize(self.D)
