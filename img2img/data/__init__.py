"""Data loading: paired folders, single-image folders, MNIST IDX files; joint augmentation."""
from .io import DataError, list_images, load_image

__all__ = ["DataError", "PairedDataset", "collate", "list_images", "load_image", "make_dataset", "scan_pairs"]


def __getattr__(name: str):
    # the torch/albumentations parts are imported on first use (keeps `img2img --help` fast)
    if name in ("PairedDataset", "collate", "scan_pairs"):
        from . import paired
        return getattr(paired, name)
    raise AttributeError(f"module 'img2img.data' has no attribute {name!r}")


def make_dataset(cfg, train: bool = True):
    """The training dataset a RunConfig describes."""
    from .paired import PairedDataset
    d, m = cfg.data, cfg.model
    if m.kind == "pix2pix":
        return PairedDataset(d.pairs, direction=d.direction, input_nc=m.input_nc, output_nc=m.output_nc,
                             load_size=d.load_size, crop_size=d.crop_size, resize=d.resize, crop=d.crop,
                             flip=d.flip, color=d.color, colorization=d.colorization, skip_bad=d.skip_bad,
                             cache=d.cache, divisor=2 ** m.depth, seed=cfg.train.seed, train=train)
    from .images import make_image_dataset
    return make_image_dataset(cfg)
