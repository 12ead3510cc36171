"""The MLP GAN of the original GAN paper's MNIST setup (Goodfellow et al., 2014), on ``--images``.

One hidden ReLU layer in G and D, Xavier initialisation, uniform noise and
28x28 images by default.  ``--mlp-out sigmoid`` makes G output pixels in [0, 1]
(the data set is then scaled to [0, 1] too); tanh outputs [-1, 1].
"""
from __future__ import annotations

import torch.nn as nn

from dataclasses import dataclass

from ..config import MAX_MLP_HIDDEN, ConfigError, RunConfig, check_int, setting
from ..nets.init import init_xavier
from ..nets.mlp import MLPDiscriminator, MLPGenerator
from .unconditional import NoiseSettings, Unconditional

MLP_OUTPUTS = ("tanh", "sigmoid")


@dataclass
class MLPSettings(NoiseSettings):
    mlp_hidden: int = setting(128, "hidden units of G and D", metavar='N', section="model")
    mlp_out: str = setting("tanh", "G's output (sigmoid trains on pixels in [0, 1])", choices=MLP_OUTPUTS,
                           section="model")

    def validate(self) -> None:
        super().validate()
        check_int("mlp-hidden", self.mlp_hidden, 1, MAX_MLP_HIDDEN)
        if self.mlp_out not in MLP_OUTPUTS:
            raise ConfigError(f"mlp-out must be one of {', '.join(MLP_OUTPUTS)}, got {self.mlp_out!r}")


class MLPGAN(Unconditional):
    name = "mlp"
    settings = MLPSettings
    defaults = {**Unconditional.defaults, "image_size": 28, "noise": "uniform"}

    @classmethod
    def output_low(cls, cfg: RunConfig) -> float:
        return 0.0 if cfg.family.mlp_out == "sigmoid" else -1.0

    @classmethod
    def build_generator(cls, cfg: RunConfig) -> nn.Module:
        m, f = cfg.model, cfg.family
        return MLPGenerator(f.z_dim, m.output_nc * m.image_size ** 2, f.mlp_hidden, f.mlp_out,
                            (m.output_nc, m.image_size, m.image_size))

    @classmethod
    def build_discriminator(cls, cfg: RunConfig) -> nn.Module:
        m = cfg.model
        return MLPDiscriminator(m.output_nc * m.image_size ** 2, cfg.family.mlp_hidden)

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.G = init_xavier(self.build_generator(cfg))
        self.D = init_xavier(self.build_discriminator(cfg))
