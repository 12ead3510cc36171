"""Typed configuration: the one source of defaults.

A run is described by a :class:`RunConfig` made of three parts:

* :class:`ModelConfig` -- what networks to build (everything a checkpoint needs
  to rebuild them, so ``translate`` and ``export`` need no architecture flags);
* :class:`DataConfig` -- where the images come from and how they are turned
  into tensors (color space, direction, augmentation);
* :class:`TrainConfig` -- optimisation and bookkeeping.

The whole ``RunConfig`` is written to ``RUN/config.json`` and stored inside
every checkpoint.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

MODEL_KINDS = ("pix2pix", "dcgan", "mlp")
OBJECTIVES = ("nonsat", "minimax", "lsgan", "hinge", "wgan-gp")
DCGAN_SIZES = (32, 64, 128)
COLORS = ("rgb", "lab")
DIRECTIONS = ("AtoB", "BtoA")


class ConfigError(ValueError):
    """An invalid combination of settings (reported to the user in one line)."""


@dataclass
class ModelConfig:
    kind: str = "pix2pix"
    input_nc: int = 3          # channels G is fed (pix2pix); ignored by unconditional models
    output_nc: int = 3         # channels G produces
    ngf: int = 64
    ndf: int = 64
    depth: int = 8             # U-Net levels: 8 for 256x256, 7 for 128x128 ...
    d_layers: int = 3          # strided layers in the PatchGAN (3 -> 70x70 receptive field)
    dropout: float = 0.5       # in the three innermost U-Net decoder levels
    image_size: int = 256      # the size the model was trained at
    z_dim: int = 100           # unconditional models: noise size
    noise: str = "normal"      # unconditional models: normal | uniform (in [-1, 1])
    mlp_hidden: int = 128      # MLP GAN hidden width
    mlp_out: str = "tanh"      # MLP GAN output: tanh ([-1, 1]) | sigmoid ([0, 1])

    def validate(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ConfigError(f"unknown model kind {self.kind!r}; choose one of {', '.join(MODEL_KINDS)}")
        for name in ("input_nc", "output_nc", "ngf", "ndf", "depth", "d_layers", "z_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.image_size < 1:
            raise ConfigError(f"image size must be at least 1, got {self.image_size} "
                              f"({'--crop-size' if self.kind == 'pix2pix' else '--size'})")
        if self.kind == "pix2pix" and self.image_size % (2 ** self.depth):
            raise ConfigError(
                f"image size {self.image_size} is not a multiple of 2^depth = {2 ** self.depth}; "
                f"use --crop-size {2 ** self.depth * max(1, round(self.image_size / 2 ** self.depth))} or a smaller --depth")
        if self.noise not in ("normal", "uniform"):
            raise ConfigError(f"noise must be normal or uniform, got {self.noise!r}")
        if self.mlp_out not in ("tanh", "sigmoid"):
            raise ConfigError(f"mlp output must be tanh or sigmoid, got {self.mlp_out!r}")
        if self.kind == "dcgan" and self.image_size not in DCGAN_SIZES:
            raise ConfigError(f"DCGAN image size must be one of {', '.join(map(str, DCGAN_SIZES))}, "
                              f"got {self.image_size} (--size)")
        if self.kind != "pix2pix" and self.output_nc not in (1, 3):
            raise ConfigError(f"{self.kind} makes gray (output-nc 1) or RGB (output-nc 3) images, not {self.output_nc}")
        if self.image_size < 1 or self.mlp_hidden < 1:
            raise ConfigError("image size and mlp-hidden must be at least 1")


@dataclass
class DataConfig:
    pairs: str | None = None        # paired folder (AB files or A/ + B/)
    images: str | None = None       # single-image folder or MNIST IDX file (unconditional models)
    direction: str = "AtoB"
    load_size: int = 286            # resize to load_size x load_size ...
    crop_size: int = 256            # ... then random crop to crop_size
    resize: bool = True
    crop: bool = True
    flip: bool = True
    color: str = "rgb"              # rgb | lab
    colorization: bool = False      # single images: A = L channel, B = ab channels
    skip_bad: bool = False          # skip unreadable/invalid files instead of refusing
    workers: int = 0
    cache: bool = True              # keep decoded images in memory when they fit

    def validate(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"direction must be AtoB or BtoA, got {self.direction!r}")
        if self.color not in COLORS:
            raise ConfigError(f"color must be rgb or lab, got {self.color!r}")
        if self.crop_size < 1 or self.load_size < 1:
            raise ConfigError("load-size and crop-size must be positive")
        if self.resize and self.crop and self.load_size < self.crop_size:
            raise ConfigError(f"load-size {self.load_size} is smaller than crop-size {self.crop_size}")
        if self.workers < 0:
            raise ConfigError("workers must be >= 0")


@dataclass
class TrainConfig:
    out: str = "runs/pix2pix"
    epochs: int = 100               # epochs at the initial learning rate
    epochs_decay: int = 100         # epochs of linear decay to zero afterwards
    max_steps: int | None = None    # stop after this many generator steps (quick runs)
    time_limit: float | None = None # stop after this many minutes (a checkpoint is written)
    batch_size: int = 1
    lr: float = 2e-4
    lr_d: float | None = None       # discriminator learning rate (default: lr)
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_l1: float = 100.0
    objective: str = "nonsat"
    gp_weight: float = 10.0         # WGAN-GP gradient penalty weight
    d_steps: int = 1                # discriminator updates per generator update
    ema_decay: float = 0.99         # smoothing of the losses shown in the progress bar
    g_ema: float = 0.999            # >0: keep an exponential moving average of G's weights (0: off)
    seed: int = 0
    device: str = "auto"            # auto | cpu | cuda | cuda:N
    channels_last: bool = False     # NHWC tensors (slower on the CPU here, try on GPU)
    amp: str = "auto"               # mixed precision: auto (bf16/fp16 on CUDA, off on CPU) | off | bf16 | fp16
    compile: bool = False           # torch.compile the networks (worth it on GPUs for long runs)
    sample_every: int = 0           # steps between sample grids (0: once per epoch)
    save_every: int = 0             # steps between checkpoints (0: once per epoch)
    keep_checkpoints: int = 1       # also keep epoch_N.pt copies when > 1... (latest.pt always)
    progress: bool = True

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.epochs < 0 or self.epochs_decay < 0 or self.epochs + self.epochs_decay < 1:
            raise ConfigError("epochs + epochs-decay must be at least 1")
        if self.batch_size < 1:
            raise ConfigError(f"batch-size must be at least 1, got {self.batch_size}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max-steps must be at least 1, got {self.max_steps}")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ConfigError(f"time-limit must be positive, got {self.time_limit}")
        if self.lr <= 0 or (self.lr_d is not None and self.lr_d <= 0):
            raise ConfigError("learning rates must be positive")
        if self.d_steps < 1:
            raise ConfigError(f"d-steps must be at least 1, got {self.d_steps}")
        if not 0.0 <= self.ema_decay < 1.0 or not 0.0 <= self.g_ema < 1.0:
            raise ConfigError("EMA decays must be in [0, 1)")


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "RunConfig":
        self.model.validate()
        self.data.validate()
        self.train.validate()
        if self.model.kind == "pix2pix":
            if self.data.pairs is None:
                raise ConfigError("pix2pix needs --pairs DIR")
            if self.data.colorization and (self.model.input_nc, self.model.output_nc) != (1, 2):
                raise ConfigError("--colorization uses a 1-channel (L) input and a 2-channel (ab) output")
            if self.data.color == "lab" and not self.data.colorization and (
                    self.model.input_nc != 3 or self.model.output_nc != 3):
                raise ConfigError("--color lab needs 3-channel input and output")
        elif self.data.images is None:
            raise ConfigError(f"{self.model.kind} needs --images DIR_OR_IDX_FILE")
        elif self.data.pairs is not None:
            raise ConfigError(f"{self.model.kind} trains on --images, not --pairs (pairs are for pix2pix)")
        return self

    # -- (de)serialisation --------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        def build(klass, values):
            known = {f.name for f in fields(klass)}
            return klass(**{k: v for k, v in (values or {}).items() if k in known})
        return cls(model=build(ModelConfig, d.get("model")),
                   data=build(DataConfig, d.get("data")),
                   train=build(TrainConfig, d.get("train")))

    def save(self, path: str | Path) -> None:
        from .checkpoint import atomic_write_text
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))




_SECTIONS = (("model", ModelConfig), ("data", DataConfig), ("train", TrainConfig))
# Settings that may change when a run is resumed (everything else comes from the checkpoint).
RESUMABLE = {"epochs", "epochs_decay", "max_steps", "time_limit", "device", "progress", "sample_every", "amp", "compile",
             "save_every", "workers", "skip_bad", "pairs", "images"}


def field_section(name: str) -> str:
    for section, klass in _SECTIONS:
        if name in {f.name for f in fields(klass)}:
            return section
    raise ConfigError(f"unknown setting {name!r}")


# Defaults of the unconditional GANs where they differ from the pix2pix ones above
# (batch 64, constant learning rate as in the DCGAN paper; the GAN paper's
# uniform noise for the MLP GAN; 28x28 for the MLP GAN, as MNIST).
UNCONDITIONAL_DEFAULTS: dict[str, dict[str, Any]] = {
    "all": {"batch_size": 64, "epochs": 25, "epochs_decay": 0, "flip": False, "g_ema": 0.0},
    # narrower than the paper's 64 and with a weight EMA: measured on MNIST at 32x32 on 2 CPU cores,
    # 10 minutes of this beats 10 minutes of the paper's widths clearly (README, "Unconditional GANs")
    "dcgan": {"image_size": 64, "ngf": 32, "ndf": 32, "batch_size": 32, "g_ema": 0.999},
    "mlp": {"image_size": 28, "noise": "uniform"},
}


def make_config(base: RunConfig | None = None, **settings: Any) -> RunConfig:
    """A RunConfig from flat settings (``pairs=..., epochs=..., ngf=...``).

    Field names are unique across the three sections, so every keyword goes to
    exactly one of them.  Derived defaults, unless given explicitly: the model's
    ``image_size`` is the crop size (pix2pix) or ``--size``; the U-Net ``depth``
    takes that size down to 1x1 (at most 8 levels); ``--colorization`` means a
    1-channel (L) input and a 2-channel (ab) output.

    Unconditional models (``kind="dcgan"|"mlp"``; ``images=`` alone implies
    dcgan) start from :data:`UNCONDITIONAL_DEFAULTS` instead of the pix2pix
    training defaults, and train on gray images (``output_nc=1``) when
    ``images`` is an IDX file.
    """
    cfg = RunConfig.from_dict(base.to_dict()) if base is not None else RunConfig()
    if base is None and "images" in settings and "pairs" not in settings:
        settings.setdefault("kind", "dcgan")
    if base is None and settings.get("kind", "pix2pix") != "pix2pix":
        kind = settings["kind"]
        for name, value in {**UNCONDITIONAL_DEFAULTS["all"], **UNCONDITIONAL_DEFAULTS[kind]}.items():
            if name not in settings:
                setattr(getattr(cfg, field_section(name)), name, value)
        if "output_nc" not in settings and settings.get("images"):
            from .data.images import is_idx_file
            cfg.model.output_nc = 1 if is_idx_file(settings["images"]) else 3
    for name, value in settings.items():
        setattr(getattr(cfg, field_section(name)), name, value)
    m, d = cfg.model, cfg.data
    if m.kind == "pix2pix":
        if "image_size" not in settings:
            m.image_size = d.crop_size
        if "depth" not in settings:
            m.depth = min(8, _twos(m.image_size))
        if d.colorization:
            m.input_nc = settings.get("input_nc", 1)
            m.output_nc = settings.get("output_nc", 2)
    return cfg


def _twos(n: int) -> int:
    """How many times n can be halved exactly (the deepest U-Net for size n)."""
    k = 0
    while n > 1 and n % 2 == 0:
        n //= 2
        k += 1
    return max(k, 2)
