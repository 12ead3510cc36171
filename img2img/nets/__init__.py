"""Pure networks: no optimisers, no losses, no file I/O."""
from .init import init_weights
from .norm import BatchNorm2d, set_norm_stats
from .patchgan import MultiscaleDiscriminator, PatchDiscriminator, PixelDiscriminator
from .resnet import ResnetGenerator
from .unet import UNetGenerator

__all__ = ["BatchNorm2d", "MultiscaleDiscriminator", "PatchDiscriminator", "PixelDiscriminator", "ResnetGenerator", "UNetGenerator",
           "init_weights", "set_norm_stats"]
