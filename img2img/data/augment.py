"""Joint augmentation: one albumentations transform applied identically to A and B."""
from __future__ import annotations

import contextlib
import os

# albumentations asks PyPI for a newer version on import (up to 2 s when offline): not from a training run
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

WHITE = 255


def build_transform(load_size: int, crop_size: int, *, resize: bool = True, crop: bool = True,
                    flip: bool = True, divisor: int = 1, train: bool = True) -> A.Compose:
    """The pix2pix jitter: resize to ``load_size``², random crop ``crop_size``², random h-flip.

    * ``crop=False``: resize straight to ``crop_size``² (no crop).
    * ``resize=False``: crop from the native size (padded with white where smaller).
    * both off: native size, padded with white to a multiple of ``divisor`` (batch size 1).
    Non-square images (e.g. 256x231 halves) are stretched to the square, as pix2pix does.
    """
    ops: list = []
    if resize and crop:
        ops += [A.Resize(load_size, load_size, interpolation=cv2.INTER_CUBIC),
                A.RandomCrop(crop_size, crop_size) if train else A.CenterCrop(crop_size, crop_size)]
    elif resize:
        ops.append(A.Resize(crop_size, crop_size, interpolation=cv2.INTER_CUBIC))
    elif crop:
        ops += [A.PadIfNeeded(crop_size, crop_size, position="center", border_mode=cv2.BORDER_CONSTANT, fill=WHITE),
                A.RandomCrop(crop_size, crop_size) if train else A.CenterCrop(crop_size, crop_size)]
    else:
        ops.append(A.PadIfNeeded(None, None, pad_height_divisor=divisor, pad_width_divisor=divisor,
                                 position="top_left", border_mode=cv2.BORDER_CONSTANT, fill=WHITE))
    if flip:
        ops.append(A.HorizontalFlip(p=0.5))
    return A.Compose(ops, additional_targets={"target": "image"}, is_check_shapes=False)


def item_seed(seed: int, epoch: int, index: int, stream: int = 0) -> int:
    """A well-mixed 32-bit seed for one (run seed, epoch, item[, stream]) tuple; ``stream`` tells
    apart several random choices made for the same item (e.g. the two sides of an unpaired item)."""
    key = [seed & 0xFFFFFFFF, epoch, index] + ([stream] if stream else [])
    return int(np.random.SeedSequence(key).generate_state(1)[0])


@contextlib.contextmanager
def seeded(transform: A.Compose, seed: int, epoch: int, index: int, stream: int = 0):
    """Make ``transform``'s random choices a pure function of (seed, epoch, index, stream)."""
    transform.set_random_seed(item_seed(seed, epoch, index, stream))
    yield transform
