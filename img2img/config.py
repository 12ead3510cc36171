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

from .files import atomic_write_text

# Choice lists: the one source for validation here and for the CLI's choices.
# (Model kinds are the family registry's: img2img.families.names().)
DATA_SOURCES = {"pairs": "DIR", "images": "DIR_OR_IDX_FILE", "unpaired": "DIR"}   # DataConfig fields naming training data
GENERATORS = ("unet", "resnet9", "resnet6")        # image-to-image generators (--netG)
DISCRIMINATORS = ("patch", "nlayers", "pixel")     # image discriminators (--netD): 70x70, N-layer, 1x1 PatchGAN
NORMS = ("batch", "instance", "none")
OBJECTIVES = ("nonsat", "minimax", "lsgan", "hinge", "wgan-gp")
COLORS = ("rgb", "lab")
DIRECTIONS = ("AtoB", "BtoA")
NOISES = ("normal", "uniform")
MLP_OUTPUTS = ("tanh", "sigmoid")
AMP_MODES = ("auto", "off", "bf16", "fp16")
VAL_METRICS = {"l1": "min", "psnr": "max", "ssim": "max"}   # validation metric -> which way is better (--best-by)
# using trained models (translate, eval, export)
POLICIES = ("resize", "pad")
POLICY_ALIASES = {"native": "pad", "resize": "resize", "pad": "pad"}
FORMATS = ("same", "png", "jpg", "webp", "bmp", "tif")
EXPORTERS = ("dynamo", "torchscript")
DEFAULT_OPSET = 18


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
    netG: str = "unet"         # image-to-image generator: unet | resnet9 | resnet6
    netD: str = "patch"        # image discriminator: patch (70x70) | nlayers (d_layers strided layers) | pixel (1x1)
    norm: str = "batch"        # normalisation in G and D: batch | instance | none
    d_spectral_norm: bool = False  # spectral norm on D's layers in place of its BatchNorm (families that offer it)

    def validate(self) -> None:
        """Checks that hold for every family (each family checks its own rules on top)."""
        for name in ("input_nc", "output_nc", "ngf", "ndf", "depth", "d_layers", "z_dim", "mlp_hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        _choice("noise", self.noise, NOISES)
        _choice("mlp-out", self.mlp_out, MLP_OUTPUTS)
        _choice("netG", self.netG, GENERATORS)
        _choice("netD", self.netD, DISCRIMINATORS)
        _choice("norm", self.norm, NORMS)


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


@dataclass
class DataConfig:
    pairs: str | None = None        # paired folder (AB files or A/ + B/)
    images: str | None = None       # single-image folder or MNIST IDX file (unconditional models)
    unpaired: str | None = None     # two folders of unpaired images, A/ and B/ (or trainA/, trainB/): CycleGAN
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
    val: str | None = None          # held-out data for validation while training (same layout as the training data)
    val_split: float = 0.0          # or: hold out this fraction of the training files (by name and seed)

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
        if not (0.0 <= self.val_split < 1.0):
            raise ConfigError(f"val-split must be a fraction in [0, 1), got {self.val_split}")
        if self.val is not None and self.val_split > 0:
            raise ConfigError("give --val DIR or --val-split F, not both")

    def validation(self) -> str:
        """What validation scores: "" (none), the --val folder, or the held-out fraction."""
        if self.val is not None:
            return f"--val {self.val}"
        return f"--val-split {self.val_split:g}" if self.val_split > 0 else ""


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
    lambda_l1: float = 100.0        # pix2pix: weight of L1(G(A), B)
    lambda_cycle: float = 10.0      # CycleGAN: weight of each cycle-consistency L1 (lambda_A = lambda_B)
    lambda_identity: float = 0.5    # CycleGAN: identity loss, as a fraction of lambda_cycle (0: off)
    pool_size: int = 50             # CycleGAN: generated images kept per discriminator (0: no history pool)
    objective: str = "nonsat"
    gp_weight: float = 10.0         # WGAN-GP gradient penalty weight
    d_steps: int = 1                # discriminator updates per generator update
    ema_decay: float = 0.99         # smoothing of the losses shown in the progress bar
    g_ema: float = 0.999            # >0: keep an exponential moving average of G's weights (0: off)
    g_ema_start: int = 0            # generator steps during which the EMA copies G (then it averages)
    label_smoothing: float = 0.0    # one-sided: D's target for real images is 1 - s (nonsat, minimax)
    instance_noise: float = 0.0     # std of Gaussian noise on every image D sees, decaying linearly to 0
    seed: int = 0
    device: str = "auto"            # auto | cpu | cuda | cuda:N
    channels_last: bool = False     # NHWC tensors (slower on the CPU here, try on GPU)
    amp: str = "auto"               # mixed precision: auto (bf16/fp16 on CUDA, off on CPU) | off | bf16 | fp16
    compile: bool = False           # torch.compile the networks (worth it on GPUs for long runs)
    sample_every: int = 0           # steps between sample grids (0: once per epoch)
    save_every: int = 0             # steps between checkpoints (0: once per epoch)
    progress: bool = True
    cpu_matmul: bool = True         # small-map convolutions as matrix products on the CPU (nets/smallconv.py)
    val_every: int = 0              # steps between validation passes (0: at the end of every epoch)
    best_by: str = "l1"             # the validation metric that picks best.pt: l1 (lower) | psnr | ssim (higher)
    keep_every: int = 0             # keep a generator-only snapshot every N epochs (snapshots/epoch_NNN.pt; 0: none)
    tensorboard: bool = False       # also log to TensorBoard under RUN/tb (pip install 'img2img[tb]')
    profile: int = 0                # record N steps with torch.profiler after a warm-up (RUN/profile/)

    def validate(self) -> None:
        _choice("objective", self.objective, OBJECTIVES)
        _choice("amp", self.amp, AMP_MODES)
        _choice("best-by", self.best_by, VAL_METRICS)
        for name in ("val_every", "keep_every", "profile"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
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
        for name in ("lambda_cycle", "lambda_identity"):
            value = getattr(self, name)
            if not (value >= 0 and value < float("inf")):
                raise ConfigError(f"{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        if self.pool_size < 0:
            raise ConfigError(f"pool-size must be >= 0 (0: no history pool), got {self.pool_size}")
        if self.g_ema_start < 0:
            raise ConfigError(f"g-ema-start must be >= 0, got {self.g_ema_start}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.label_smoothing and self.objective not in ("nonsat", "minimax"):
            raise ConfigError(f"label-smoothing is for the nonsat and minimax objectives, not {self.objective}")
        if not (0.0 <= self.instance_noise < float("inf")):
            raise ConfigError(f"instance-noise must be a finite number >= 0, got {self.instance_noise}")


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "RunConfig":
        """The checks every family shares; :func:`img2img.families.check` adds the family's own."""
        self.model.validate()
        self.data.validate()
        self.train.validate()
        if self.train.val_every and not self.data.validation():
            raise ConfigError("--val-every needs validation data: --val DIR or --val-split F")
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
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


_SECTIONS = (("model", ModelConfig), ("data", DataConfig), ("train", TrainConfig))
# Settings that may change when a run is resumed (everything else comes from the checkpoint).
RESUMABLE = {"epochs", "epochs_decay", "max_steps", "time_limit", "device", "progress", "sample_every", "amp", "compile",
             "save_every", "workers", "skip_bad", "pairs", "images", "unpaired", "cpu_matmul",
             "val", "val_every", "keep_every", "tensorboard", "profile"}


def field_section(name: str) -> str:
    for section, klass in _SECTIONS:
        if name in {f.name for f in fields(klass)}:
            return section
    raise ConfigError(f"unknown setting {name!r}")

