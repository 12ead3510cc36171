"""The MLP GAN of the original GAN paper's MNIST setup (Goodfellow et al., 2014), on ``--images``.

One hidden ReLU layer in G and D, Xavier initialisation, uniform noise and
28x28 images by default.  ``--mlp-out sigmoid`` makes G output pixels in [0, 1]
(the data set is then scaled to [0, 1] too); tanh outputs [-1, 1].
"""
from __future__ import annotations

import torch.nn as nn

from ..config import RunConfig
from ..nets.init import init_xavier
from ..nets.mlp import MLPDiscriminator, MLPGenerator
from .unconditional import Unconditional


class MLPGAN(Unconditional):
    name = "mlp"
    defaults = {**Unconditional.defaults, "image_size": 28, "noise": "uniform"}

    @classmethod
    def output_low(cls, cfg: RunConfig) -> float:
        return 0.0 if cfg.model.mlp_out == "sigmoid" else -1.0

    @classmethod
    def build_generator(cls, cfg: RunConfig) -> nn.Module:
        m = cfg.model
        return MLPGenerator(m.z_dim, m.output_nc * m.image_size ** 2, m.mlp_hidden, m.mlp_out,
                            (m.output_nc, m.image_size, m.image_size))

    @classmethod
    def build_discriminator(cls, cfg: RunConfig) -> nn.Module:
        m = cfg.model
        return MLPDiscriminator(m.output_nc * m.image_size ** 2, m.mlp_hidden)

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.G = init_xavier(self.build_generator(cfg))
        self.D = init_xavier(self.build_discriminator(cfg))
