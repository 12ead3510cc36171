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
DISCRIMINATORS = ("patch", "nlayers", "pixel", "multiscale")   # --netD: 70x70, N-layer, 1x1 PatchGAN; N scales
NORMS = ("batch", "instance", "none")
OBJECTIVES = ("nonsat", "minimax", "lsgan", "hinge", "wgan-gp")
COLORS = ("rgb", "lab")
DIRECTIONS = ("AtoB", "BtoA")
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


def setting(default, help: str, **cli):
    """A configuration field that is also a ``train`` flag: ``help`` and, in ``cli``, ``flag``
    (default ``--NAME``, or ``--no-NAME`` for a setting that is on by default; a tuple adds
    aliases), ``metavar``, ``choices``, ``group`` (its section of ``--help``; default: the
    dataclass's) and, for a family's setting (:class:`FamilySettings`), ``section`` (the
    config.json section it is stored in).  The CLI builds its flags from these (``img2img.cli``;
    a family setting's help is prefixed with the families that have it): a setting is declared once."""
    return field(default=default, metadata={"help": help, **cli})


def flags_of(klass, f) -> tuple[str, ...]:
    """The ``train`` flags of setting ``f`` of dataclass ``klass`` (declared with :func:`setting`):
    its ``flag`` metadata, else ``--NAME``, or ``--no-NAME`` for an on/off setting on by default."""
    flag = f.metadata.get("flag")
    if flag is None:
        off = bool in field_types(klass)[f.name] and f.default
        flag = ("--no-" if off else "--") + f.name.replace("_", "-")
    return (flag,) if isinstance(flag, str) else tuple(flag)


def spelled(name: str, value) -> str | None:
    """How ``train`` sets setting ``name`` to ``value`` on the command line (``--epochs 20``,
    ``--no-cache``), or None where no flag does (a setting without one, an on/off setting's
    default value, None)."""
    klass = dict(_SECTIONS)[field_section(name)]
    f = next(f for f in fields(klass) if f.name == name)
    if "help" not in f.metadata or value is None:
        return None
    flag = flags_of(klass, f)[0]
    if bool in field_types(klass)[name]:
        return flag if value != f.default else None
    return f"{flag} {value}"


_TYPE_WORDS = {int: "a whole number", float: "a number", str: "text", bool: "true or false", type(None): "null"}


@functools.cache
def field_types(klass) -> dict[str, tuple[type, ...]]:
    """Each field's allowed types, from the dataclass's annotations (``int | None`` -> (int, NoneType))."""
    return {name: typing.get_args(hint) or (hint,) for name, hint in typing.get_type_hints(klass).items()}


def _check_types(section) -> None:
    """Every field of a config dataclass has its declared type (int, float, str, bool, or None where
    allowed); a whole number is a number too, true/false is not."""
    for f in fields(section):
        value, allowed = getattr(section, f.name), field_types(type(section))[f.name]
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
    input_nc: int = setting(3, "input channels (1: gray)", choices=[1, 3])
    output_nc: int = setting(3, "output channels", choices=[1, 3])
    ngf: int = setting(64, "generator width (pix2pix 64: a 54.4M-parameter U-Net)", metavar='N')
    ndf: int = setting(64, "discriminator width", metavar='N')
    depth: int = setting(8, "U-Net levels (default: down to 1x1 at the crop size, at most 8; 8 for 256, 7 for 128)",
                            metavar='N')
    d_layers: int = setting(3, "strided layers of the PatchGAN (3: 70x70 patches)",
                               flag=('--n-layers-d', '--d-layers'), metavar='N')
    dropout: float = setting(0.5, "dropout in the 3 innermost decoder levels", metavar='P')
    image_size: int = 256      # the size the model was trained at
    netG: str = setting("unet", "image generator: unet (pix2pix), resnet9 / resnet6 (9 or 6 residual blocks; "
                                "cyclegan: resnet9 at 256, resnet6 below)", choices=GENERATORS)
    netD: str = setting("patch", "image discriminator: patch (70x70 PatchGAN), nlayers (PatchGAN with "
                                 "--n-layers-d), pixel (1x1), multiscale (--num-d PatchGANs at 1, 1/2, ... "
                                 "scale)", choices=DISCRIMINATORS)
    norm: str = setting("batch", "normalisation in G and D", choices=NORMS)

    def validate(self) -> None:
        """Checks that hold for every family (each family checks its own rules on top)."""
        _check_types(self)
        for name, high in (("input_nc", MAX_CHANNELS), ("output_nc", MAX_CHANNELS), ("ngf", MAX_WIDTH),
                           ("ndf", MAX_WIDTH), ("depth", MAX_DEPTH), ("d_layers", MAX_D_LAYERS)):
            check_int(name.replace('_', '-'), getattr(self, name), 1, high)
        check_int("image size", self.image_size, 1, MAX_IMAGE_SIZE)
        check_number("dropout", self.dropout, 0.0, 1.0, high_open=True)
        _choice("netG", self.netG, GENERATORS)
        _choice("netD", self.netD, DISCRIMINATORS)
        _choice("norm", self.norm, NORMS)


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


@dataclass
class DataConfig:
    pairs: str | None = setting(None, "folder of pairs: AB files, or A/ and B/ sub-folders", metavar='DIR')
    images: str | None = setting(None, "dcgan/mlp: a folder of images (recursive) or an MNIST IDX file (.gz or "
                                       "not)", metavar='DIR|IDX_FILE')
    unpaired: str | None = setting(None, "cyclegan: a folder holding A/ and B/ (or trainA/ and trainB/) of "
                                         "unpaired images", metavar='DIR')
    direction: str = setting("AtoB", "which side is the input", choices=DIRECTIONS)
    load_size: int = setting(286, "resize images to NxN first", metavar='N')
    crop_size: int = setting(256, "then take a random NxN crop; this is the model's image size", metavar='N')
    resize: bool = setting(True, "crop at the images' own size (smaller images are padded with white)")
    crop: bool = setting(True, "resize straight to --crop-size, no random crop")
    flip: bool = setting(True, "no random horizontal flips")
    color: str = setting("rgb", "color space the networks work in (lab: L/50-1, ab/110, via kornia)",
                                choices=COLORS)
    colorization: bool = setting(False, "single-image folder; learn L -> ab (1-channel in, 2 out); outputs "
                                        "recombined with L")
    skip_bad: bool = setting(False, "leave bad files out instead of refusing")
    workers: int = setting(0, "data-loading processes", metavar='N')
    cache: bool = setting(True, "decode every image every epoch instead of keeping the decoded set in memory (kept"
                                " when under 2 GB); a file that turns bad mid-run is then skipped, named and "
                                "counted")
    val: str | None = setting(None, "held-out data scored while training: pairs in any --pairs layout (cyclegan "
                                    "scores them both ways), or for cyclegan two domains, testA/+testB/, A/+B/ or "
                                    "trainA/+trainB/ (cycle reconstruction); not for dcgan/mlp", metavar='DIR')
    val_split: float = setting(0.0, "or hold out this fraction of the training files (chosen by file name and "
                                    "--seed; the same on --resume; cyclegan: of each domain)", metavar='F')

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
    out: str = setting("runs/pix2pix", "run folder", metavar='RUN')
    epochs: int = setting(100, "epochs at the initial learning rate", metavar='N')
    epochs_decay: int = setting(100, "epochs of linear decay to 0", metavar='N')
    max_steps: int | None = setting(None, "stop after N steps (quick runs)", metavar='N')
    time_limit: float | None = setting(None, "stop after MIN minutes of training (a checkpoint is written)",
                                             metavar='MIN')
    batch_size: int = setting(1, "images per step", metavar='N')
    lr: float = setting(2e-4, "Adam learning rate")
    lr_d: float | None = setting(None, "discriminator learning rate (default: --lr)", metavar='LR')
    beta1: float = setting(0.5, "Adam beta1")
    beta2: float = 0.999
    objective: str = setting("nonsat", "GAN objective", choices=OBJECTIVES)
    gp_weight: float = 10.0         # WGAN-GP gradient penalty weight
    d_steps: int = setting(1, "discriminator updates per generator update", metavar='K')
    ema_decay: float = 0.99         # smoothing of the losses shown in the progress bar
    g_ema: float = setting(0.999, "keep an EMA of the generator's weights and use it for samples and model.pt (0: "
                                  "off)", metavar='DECAY')
    g_ema_start: int = setting(0, "the weight EMA copies G for the first N generator steps, then averages",
                                  metavar='N')
    label_smoothing: float = setting(0.0, "one-sided label smoothing: D's target for real images is 1 - S (nonsat,"
                                          " minimax)", metavar='S')
    instance_noise: float = setting(0.0, "Gaussian noise of this std on every image D sees (real and generated), "
                                         "decaying linearly to 0 over the run", metavar='STD')
    seed: int = setting(0, "random seed (data order, augmentation, init, dropout)")
    device: str = setting("auto", "auto, cpu, cuda or cuda:N", metavar='DEV')
    channels_last: bool = setting(False, "NHWC memory layout (faster on many GPUs; slower on the CPU measured "
                                         "here)")
    amp: str = setting("auto", "mixed precision: auto = bf16 (or fp16 with loss scaling) on CUDA, off on the CPU",
                               choices=AMP_MODES)
    compile: bool = setting(False, "torch.compile the networks (GPU, long runs)")
    sample_every: int = setting(0, "write a sample grid every N steps (0: once per epoch)", metavar='N')
    save_every: int = setting(0, "write latest.pt every N steps (0: once per epoch)", metavar='N')
    progress: bool = setting(True, "no progress bar")
    cpu_matmul: bool = setting(True, "run every convolution on torch's own kernels (by default each U-Net "
                                     "convolution runs as a matrix product on the CPU where that measured faster "
                                     "at start-up: same results to float rounding)")
    val_every: int = setting(0, "steps between validation passes (0: after every epoch); needs --val or "
                                "--val-split", metavar='N', group='validation, logging and profiling')
    best_by: str = setting("l1", "the validation metric that picks RUN/best.pt (l1: lowest; psnr, ssim: highest)",
                                 choices=list(VAL_METRICS), group='validation, logging and profiling')
    keep_every: int = setting(0, "keep a generator-only snapshot every N epochs, RUN/snapshots/epoch_NNN.pt (0: "
                                 "none)", metavar='N', group='validation, logging and profiling')
    tensorboard: bool = setting(False, "also write TensorBoard events under RUN/tb: every loss, lr, validation, "
                                       "sample grids (pip install 'img2img[tb]')",
                                       group='validation, logging and profiling')
    profile: int = setting(0, "record N steps with torch.profiler after a warm-up: RUN/profile/trace.json "
                              "(chrome://tracing, Perfetto) and top_ops.txt (0: off)",
                              metavar='N', group='validation, logging and profiling')

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
        check_number("gp-weight", self.gp_weight, 0.0, math.inf)
        check_int("d-steps", self.d_steps, 1, MAX_D_STEPS)
        check_number("ema-decay", self.ema_decay, 0.0, 1.0, high_open=True)
        check_number("g-ema", self.g_ema, 0.0, 1.0, high_open=True, why=" (0: off)")
        check_seed(self.seed)
        check_device_name(self.device)
        check_int("sample-every", self.sample_every, 0, MAX_STEPS, " (0: once per epoch)")
        check_int("save-every", self.save_every, 0, MAX_STEPS, " (0: once per epoch)")
        check_int("g-ema-start", self.g_ema_start, 0, MAX_STEPS, " (steps before the weight EMA starts)")
        check_number("label-smoothing", self.label_smoothing, 0.0, 1.0, high_open=True, why=" (0: off)")
        if self.label_smoothing and self.objective not in ("nonsat", "minimax"):
            raise ConfigError(f"label-smoothing is for the nonsat and minimax objectives, not {self.objective}")
        check_number("instance-noise", self.instance_noise, 0.0, math.inf, why=" (0: off)")


@dataclass
class FamilySettings:
    """The settings of one model family alone (pix2pix's ``lambda_l1``, CycleGAN's ``pool_size``, the
    noise of the GANs from noise, ...): a family's ``settings`` class subclasses this one and declares
    its fields with :func:`setting`, with its checks in ``validate``.  ``section`` in a field's
    metadata ("model" or "train", the default) is the config.json section it is stored in, so
    config.json and checkpoints have one layout whichever family wrote them (and the files of earlier
    versions, which kept every family's settings in those sections, load as they are)."""

    def validate(self) -> None:
        _check_types(self)


def stored_section(f) -> str:
    """The config.json section of family setting ``f`` (a dataclass field)."""
    return f.metadata.get("section", "train")


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    family: FamilySettings = field(default_factory=FamilySettings)    # the settings of model.kind's family

    def sections(self):
        """The four setting groups: model, data, train and the family's own."""
        return (self.model, self.data, self.train, self.family)

    def holder(self, name: str):
        """The section (a dataclass instance) that holds setting ``name``; ConfigError if none does."""
        for section in self.sections():
            if name in {f.name for f in fields(section)}:
                return section
        raise ConfigError(f"unknown setting {name!r}")

    def check_types(self) -> "RunConfig":
        """Every field has its declared type (before anything computes with the values)."""
        for section in self.sections():
            _check_types(section)
        return self

    def validate(self) -> "RunConfig":
        """The checks every family shares and the family settings' own; :func:`img2img.families.check`
        adds the family's rules that span sections."""
        self.model.validate()
        self.data.validate()
        self.train.validate()
        self.family.validate()
        if self.train.val_every and not self.data.validation():
            raise ConfigError("--val-every needs validation data: --val DIR or --val-split F")
        return self

    # -- (de)serialisation --------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """{"model": ..., "data": ..., "train": ...}: the family's settings inside the sections their
        fields name (:func:`stored_section`)."""
        d = {"model": asdict(self.model), "data": asdict(self.data), "train": asdict(self.train)}
        for f in fields(self.family):
            d[stored_section(f)][f.name] = getattr(self.family, f.name)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], settings: type[FamilySettings] = FamilySettings) -> "RunConfig":
        """From :meth:`to_dict`'s form, with the family settings of class ``settings`` (the family's
        of ``d``'s kind: :func:`img2img.families.config_from_dict` picks it).  Unknown keys are ignored
        (a newer img2img's, or another family's settings as earlier versions stored them), missing ones
        take the defaults.  ConfigError if ``d`` or a section is not a dictionary (values are checked by
        :meth:`validate`)."""
        if not isinstance(d, dict):
            raise ConfigError(f"expected an object with model, data and train sections, got {type(d).__name__}")
        for name in ("model", "data", "train"):
            if d.get(name) is not None and not isinstance(d[name], dict):
                raise ConfigError(f"its {name} section must be an object, got {type(d[name]).__name__}")

        def build(klass, *names):
            known = {f.name for f in fields(klass)}
            values = {k: v for name in names for k, v in (d.get(name) or {}).items()}
            return klass(**{k: v for k, v in values.items() if k in known})
        return cls(model=build(ModelConfig, "model"), data=build(DataConfig, "data"),
                   train=build(TrainConfig, "train"),
                   family=build(settings, *sorted({stored_section(f) for f in fields(settings)})))

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


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

