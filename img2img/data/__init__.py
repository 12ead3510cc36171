"""Data loading: paired folders, single-image folders, MNIST IDX files; joint augmentation."""
from .io import DataError, list_images, load_image
from .paired import PairedDataset, collate, scan_pairs

__all__ = ["DataError", "PairedDataset", "collate", "list_images", "load_image", "scan_pairs"]


def make_dataset(cfg, train: bool = True):
    """The training dataset a RunConfig describes."""
    d, m = cfg.data, cfg.model
    if m.kind == "pix2pix":
        return PairedDataset(d.pairs, direction=d.direction, input_nc=m.input_nc, output_nc=m.output_nc,
                             load_size=d.load_size, crop_size=d.crop_size, resize=d.resize, crop=d.crop,
                             flip=d.flip, color=d.color, colorization=d.colorization, skip_bad=d.skip_bad,
                             cache=d.cache, divisor=2 ** m.depth, seed=cfg.train.seed, train=train)
    from .images import make_image_dataset
    return make_image_dataset(cfg)
