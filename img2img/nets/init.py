"""Weight initialisation used by pix2pix and DCGAN: N(0, 0.02), BatchNorm scale N(1, 0.02)."""
from __future__ import annotations

import torch.nn as nn


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def init_xavier(module: nn.Module) -> nn.Module:
    """Xavier (Glorot) init, as in the original GAN paper's MLPs."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return module
