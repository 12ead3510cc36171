"""Data loading: paired folders, single-image folders, MNIST IDX files; joint augmentation."""
from .io import DataError, list_images, load_image

__all__ = ["DataError", "PairedDataset", "collate", "list_images", "load_image", "scan_pairs"]


def __getattr__(name: str):
    # the torch/albumentations parts are imported on first use (keeps `img2img --help` fast)
    if name in ("PairedDataset", "collate", "scan_pairs"):
        from . import paired
        return getattr(paired, name)
    raise AttributeError(f"module 'img2img.data' has no attribute {name!r}")

