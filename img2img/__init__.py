"""img2img: image-to-image translation (pix2pix) on a general GAN core.

Public API::

    from img2img import train, Translator, evaluate, export_onnx, sample
    run = train(pairs="datasets/shapes/train", out="runs/demo", crop_size=128, crop=False, ngf=16, ndf=32)
    photo = Translator.load(run)(Image.open("outline.png"))

Names are imported on first use, so ``img2img --version`` and ``--help`` do not
pay for importing torch.  (No module is named like a function here -- evaluation.py,
sampling.py -- so importing a module never hides the function of the same name.)
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "DataConfig": "config", "ModelConfig": "config", "RunConfig": "config", "TrainConfig": "config",
    "make_config": "families",
    "Trainer": "gan.trainer", "train": "gan.launch",
    "Sampler": "sampling", "interpolate": "sampling", "sample": "sampling", "save_samples": "sampling",
    "Translator": "translate", "translate_folder": "pipeline",
    "evaluate": "evaluation",
    "export_onnx": "export",
}
__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'img2img' has no attribute {name!r}")


def __dir__():
    return __all__
