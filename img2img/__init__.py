"""img2img: image-to-image translation (pix2pix) on a general GAN core.

Public API::

    from img2img import train, RunConfig
    run = train(pairs="datasets/shapes", out="runs/demo", epochs=2, crop_size=64, load_size=72)
"""
__version__ = "0.1.0"

from .config import DataConfig, ModelConfig, RunConfig, TrainConfig, make_config  # noqa: E402
from .gan.trainer import Trainer, train  # noqa: E402

__all__ = ["DataConfig", "ModelConfig", "RunConfig", "TrainConfig", "Trainer", "make_config", "train",
           "__version__"]
