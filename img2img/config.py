"""Typed configuration: the one source of defaults.

A run is described by a :class:`RunConfig` made of three parts:

* :class:`ModelConfig` -- what networks to build (everything a checkpoint needs
  to rebuild them, so ``translate`` and ``export`` need no architecture flags);
* :class:`DataConfig` -- where the images come from and how they are turned
  into tensors (color space, direction, augmentation);
* :class:`TrainConfig` -- optimisation and bookkeeping.

The whole ``RunConfig`` is written to ``RUN/config.json`` and stored inside
every checkpoint.

Every setting is checked the same way wherever it comes from -- a command-line
flag, a keyword of the Python API, or a config stored in a checkpoint or an
ONNX file (which may come from anyone): its type first, then its range,
including an upper bound (the ``MAX_*`` constants below), so a bad value is one line, never a
traceback or an allocation of terabytes.  NaN fails every range check.
"""
from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
import typing
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

# Upper bounds, the same for the command line, the Python API and stored configs (a model file from the
# internet must not make img2img build a network or an image of terabytes).  Each is far beyond any real
# use; why each value:
MAX_IMAGE_SIZE = 4096       # model image size: the 256² U-Net needs ~2.5 GB per training image; 4096² is 256x that
MAX_LOAD_SIZE = 8192        # --load-size / --crop-size: the resize target before the crop (2x the model's maximum)
MAX_WIDTH = 1024            # --ngf / --ndf: 16x the papers' 64 (the U-Net at 1024 has 14 G parameters)
MAX_DEPTH = 12              # U-Net levels: 2^12 = MAX_IMAGE_SIZE
MAX_D_LAYERS = 10           # PatchGAN strided layers (its patch would be ~8000 pixels wide)
MAX_CHANNELS = 4            # image channels (gray 1, ab 2, RGB 3)
MAX_Z_DIM = 4096            # noise dimensions (the papers use 100)
MAX_MLP_HIDDEN = 65536      # MLP GAN hidden units (the paper uses 128-1200)
MAX_BATCH = 1024            # images per step / per forward pass (the inputs alone of 1024 256² images: 0.8 GB)
MAX_WORKERS = 128           # processes; more only contend for the cores
MAX_SEED = 2 ** 32 - 1      # seeds are 32-bit: derived seeds (seed * 1_000_003 + epoch) stay within torch's 64 bits
MAX_EPOCHS = 1_000_000      # larger counts overflow the float arithmetic of the learning-rate schedule
MAX_STEPS = 10 ** 12
MAX_D_STEPS = 1000          # discriminator updates per generator update
MAX_MINUTES = 10 ** 7       # --time-limit (19 years)
MAX_POOL = 1000             # CycleGAN history pool, per discriminator (the paper keeps 50; 1000 256² RGB = 0.8 GB)
MAX_PARAMETERS = 2 * 10 ** 9   # G + D: 8 GB of float32 weights (24 GB with Adam's state); counted without building
DEVICE_NAMES = "auto, cpu, cuda or cuda:N"


class ConfigError(ValueError):
    """An invalid combination of settings (reported to the user in one line)."""


def check_int(name: str, value, low: int, high: int, why: str = "") -> int:
    """``value`` if it is an integer in [low, high]; else ConfigError naming ``name`` (e.g. ``--seed``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high:,}{why}, got {value}")
    return value


def check_number(name: str, value, low: float, high: float, *, low_open: bool = False,
                 high_open: bool = False, why: str = "") -> float:
    """``value`` if it is a finite number in the range (open ends where asked); else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (math.isfinite(value) and above and below):     # NaN fails here too
        span = f"in {'(' if low_open else '['}{_num(low)}, {_num(high)}{')' if high_open else ']'}" \
            if high < math.inf else f"{'>' if low_open else '>='} {_num(low)}"
        raise ConfigError(f"{name} must be a finite number {span}{why}, got {value}")
    return value


def _num(x: float) -> str:
    return f"{int(x)}" if float(x).is_integer() else f"{x:g}"


def check_seed(value, name: str = "seed") -> int:
    return check_int(name, value, 0, MAX_SEED)


def check_device_name(value, name: str = "--device") -> str:
    """``value`` if it names a device img2img runs on (auto, cpu, cuda, cuda:N); availability is checked later."""
    if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|cuda(:\d{1,3})?", value):
        raise ConfigError(f"{name} {value}: not a device img2img runs on ({DEVICE_NAMES})")
    return value


_TYPE_WORDS = {int: "a whole number", float: "a number", str: "text", bool: "true or false", type(None): "null"}


@functools.cache
def _field_types(klass) -> dict[str, tuple[type, ...]]:
    """Each field's allowed types, from the dataclass's annotations (``int | None`` -> (int, NoneType))."""
    return {name: typing.get_args(hint) or (hint,) for name, hint in typing.get_type_hints(klass).items()}


def _check_types(section) -> None:
    """Every field of a config dataclass has its declared type (int, float, str, bool, or None where
    allowed); a whole number is a number too, true/false is not."""
    for f in fields(section):
        value, allowed = getattr(section, f.name), _field_types(type(section))[f.name]
        if isinstance(value, bool):
            ok = bool in allowed
        elif isinstance(value, int):
            ok = int in allowed or float in allowed
        else:
            ok = isinstance(value, tuple(t for t in allowed if t is not int))
        if not ok:
            want = " or ".join(_TYPE_WORDS.get(t, t.__name__) for t in sorted(allowed, key=lambda t: t is type(None)))
            raise ConfigError(f"{f.name.replace('_', '-')} must be {want}, got {value!r}")


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
        _check_types(self)
        for name, high in (("input_nc", MAX_CHANNELS), ("output_nc", MAX_CHANNELS), ("ngf", MAX_WIDTH),
                           ("ndf", MAX_WIDTH), ("depth", MAX_DEPTH), ("d_layers", MAX_D_LAYERS),
                           ("z_dim", MAX_Z_DIM), ("mlp_hidden", MAX_MLP_HIDDEN)):
            check_int(name.replace('_', '-'), getattr(self, name), 1, high)
        check_int("image size", self.image_size, 1, MAX_IMAGE_SIZE)
        check_number("dropout", self.dropout, 0.0, 1.0, high_open=True)
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
        _check_types(self)
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"direction must be AtoB or BtoA, got {self.direction!r}")
        if self.color not in COLORS:
            raise ConfigError(f"color must be rgb or lab, got {self.color!r}")
        check_int("load-size", self.load_size, 1, MAX_LOAD_SIZE)
        check_int("crop-size", self.crop_size, 1, MAX_LOAD_SIZE)
        if self.resize and self.crop and self.load_size < self.crop_size:
            raise ConfigError(f"load-size {self.load_size} is smaller than crop-size {self.crop_size}")
        check_int("workers", self.workers, 0, MAX_WORKERS)
        check_number("val-split", self.val_split, 0.0, 1.0, high_open=True, why=" (a fraction)")
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
    cpu_matmul: bool = True         # U-Net convolutions as matrix products on the CPU where measured faster (nets/smallconv.py)
    val_every: int = 0              # steps between validation passes (0: at the end of every epoch)
    best_by: str = "l1"             # the validation metric that picks best.pt: l1 (lower) | psnr | ssim (higher)
    keep_every: int = 0             # keep a generator-only snapshot every N epochs (snapshots/epoch_NNN.pt; 0: none)
    tensorboard: bool = False       # also log to TensorBoard under RUN/tb (pip install 'img2img[tb]')
    profile: int = 0                # record N steps with torch.profiler after a warm-up (RUN/profile/)

    def validate(self) -> None:
        _check_types(self)
        _choice("objective", self.objective, OBJECTIVES)
        _choice("amp", self.amp, AMP_MODES)
        _choice("best-by", self.best_by, VAL_METRICS)
        check_int("val-every", self.val_every, 0, MAX_STEPS, " (0: at the end of every epoch)")
        check_int("keep-every", self.keep_every, 0, MAX_EPOCHS, " (0: no snapshots)")
        check_int("profile", self.profile, 0, MAX_STEPS, " (0: off)")
        check_int("epochs", self.epochs, 0, MAX_EPOCHS)
        check_int("epochs-decay", self.epochs_decay, 0, MAX_EPOCHS)
        if self.epochs + self.epochs_decay < 1:
            raise ConfigError("epochs + epochs-decay must be at least 1")
        check_int("batch-size", self.batch_size, 1, MAX_BATCH)
        if self.max_steps is not None:
            check_int("max-steps", self.max_steps, 1, MAX_STEPS)
        if self.time_limit is not None:
            check_number("time-limit", self.time_limit, 0.0, MAX_MINUTES, low_open=True, why=" minutes")
        for name in ("lr", "lr_d"):                       # Adam takes any positive step; 1e30 diverges visibly
            if getattr(self, name) is not None:
                check_number(name.replace('_', '-'), getattr(self, name), 0.0, math.inf, low_open=True,
                             why=" (learning rates are positive)")
        check_number("beta1", self.beta1, 0.0, 1.0, high_open=True, why=" (Adam)")
        check_number("beta2", self.beta2, 0.0, 1.0, high_open=True, why=" (Adam)")
        check_number("lambda-l1", self.lambda_l1, 0.0, math.inf, why=" (0: no L1 term)")
        check_number("gp-weight", self.gp_weight, 0.0, math.inf)
        check_int("d-steps", self.d_steps, 1, MAX_D_STEPS)
        check_number("ema-decay", self.ema_decay, 0.0, 1.0, high_open=True)
        check_number("g-ema", self.g_ema, 0.0, 1.0, high_open=True, why=" (0: off)")
        check_seed(self.seed)
        check_device_name(self.device)
        check_int("sample-every", self.sample_every, 0, MAX_STEPS, " (0: once per epoch)")
        check_int("save-every", self.save_every, 0, MAX_STEPS, " (0: once per epoch)")
        check_number("lambda-cycle", self.lambda_cycle, 0.0, math.inf)
        check_number("lambda-identity", self.lambda_identity, 0.0, math.inf, why=" (a fraction of lambda-cycle; 0: off)")
        check_int("pool-size", self.pool_size, 0, MAX_POOL, " (0: no history pool)")
        check_int("g-ema-start", self.g_ema_start, 0, MAX_STEPS, " (steps before the weight EMA starts)")
        check_number("label-smoothing", self.label_smoothing, 0.0, 1.0, high_open=True, why=" (0: off)")
        if self.label_smoothing and self.objective not in ("nonsat", "minimax"):
            raise ConfigError(f"label-smoothing is for the nonsat and minimax objectives, not {self.objective}")
        check_number("instance-noise", self.instance_noise, 0.0, math.inf, why=" (0: off)")


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def check_types(self) -> "RunConfig":
        """Every field has its declared type (before anything computes with the values)."""
        for section in (self.model, self.data, self.train):
            _check_types(section)
        return self

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
        """From :meth:`to_dict`'s form; unknown keys are ignored (a newer img2img's), missing ones take
        the defaults.  ConfigError if ``d`` or a section is not a dictionary (values are checked by
        :meth:`validate`)."""
        if not isinstance(d, dict):
            raise ConfigError(f"expected an object with model, data and train sections, got {type(d).__name__}")

        def build(klass, values):
            if values is not None and not isinstance(values, dict):
                raise ConfigError(f"its {klass.__name__[:-6].lower()} section must be an object, "
                                  f"got {type(values).__name__}")
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
             "save_every", "workers", "skip_bad", "cache", "pairs", "images", "unpaired", "cpu_matmul",
             "val", "val_every", "keep_every", "tensorboard", "profile"}


def field_section(name: str) -> str:
    for section, klass in _SECTIONS:
        if name in {f.name for f in fields(klass)}:
            return section
    raise ConfigError(f"unknown setting {name!r}")

