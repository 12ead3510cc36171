"""What a model family is, and what a new one must provide.

A *family* (pix2pix, DCGAN, the MLP GAN, ...) is everything that differs
between the GANs img2img trains; the training loop (:mod:`img2img.gan.trainer`),
``translate``, ``eval``, ``export``, ``sample`` and the data loading ask the
family and never compare a model's kind to a name.  Adding a family is one
module under ``img2img/families/`` with a subclass of :class:`Family`, plus one
line in the registry (``img2img/families/__init__.py``).

A new family provides:

**Class attributes**

* ``name`` -- the ``--model`` value (``ModelConfig.kind``).
* ``data`` -- the :class:`~img2img.config.DataConfig` field that names its
  training data: ``"pairs"``, ``"images"`` or ``"unpaired"``.  The first registered family of a
  data setting is the one that setting picks when ``--model`` is not given.
* ``conditional`` -- True if it translates images (``translate``, ``eval``,
  ``export`` as RGB -> RGB); False if it draws from noise (``sample``).
* ``defaults`` -- settings whose default differs from the dataclasses' for
  this family (e.g. ``{"batch_size": 64}``).
* ``loss_names`` -- the logged losses the progress bar and the loss plot show, in order.
* ``d_loss_scale`` -- factor on the discriminator's loss (pix2pix halves it).
* ``size_flag`` -- the option that sets ``image_size``, for messages.
* ``settings`` -- the dataclass of the family's own settings (a
  :class:`~img2img.config.FamilySettings` subclass, e.g. pix2pix's ``lambda_l1``):
  ``cfg.family`` is one; each field is also a ``train`` flag, which the other
  families refuse.  Families may share one (DCGAN and the MLP GAN: the noise).
* ``io_names`` -- (input, output) names of the exported ONNX graph;
  ``inference_note`` -- how it runs at inference (normalisation, dropout), for its metadata.
* ``validates`` -- whether ``--val`` / ``--val-split`` apply (validation while training).

**Configuration and networks** (class methods: nothing is built or trained)

* ``configure(cfg, given)`` -- derived defaults for settings not in ``given``.
* ``check(cfg)`` -- the family's own rules; raise ``ConfigError`` in one line.
* ``build_generator(cfg)`` / ``build_discriminator(cfg)`` -- untrained networks
  (the generator is what model.pt stores under ``"G"``).
* ``dataset(cfg, train=True)`` -- the training set; items are dicts of tensors.
* ``to_rgb(x, cfg)`` -- G's output -> RGB in [0, 1] (the output range lives here).
* ``inference_module(G, cfg, direction=None)`` -- the self-contained function
  ``translate`` runs and ``export`` writes (see :mod:`img2img.families.wrappers`);
  ``export_module(G, cfg, direction=None)`` -- what ``export`` writes: by default the
  ``inference_module``; image-to-image families wrap it to take any H and W;
  ``directions(cfg)`` -- the directions a conditional model translates (the
  first is the default; a CycleGAN model has two);
  ``example_inputs(cfg)`` -- inputs for the export's parity check;
  ``input_images(cfg, root, direction)`` -- (conditional families) the images a training-data
  folder ``root`` feeds the generator of ``direction``: (how many, a function loading the
  i-th as uint8 RGB (H, W, 3)); int8 quantization calibrates on them;
  ``size_multiple(cfg)`` -- image sides must be multiples of this;
  ``loaded(G, cfg, state)`` -- a generator just loaded from a checkpoint, made
  ready for use.
* ``validation_sets(cfg)`` -- the held-out images validation scores (a list of
  :class:`~img2img.data.holdout.HeldOut`: inputs, targets, the directions the
  inputs go through); ``validation_label(cfg, sets)`` -- what the figures compare, in words.
* ``loss_axes(cfg)`` -- how the loss plot labels each logged loss, and an optional
  second axis (e.g. pix2pix's G_L1 = λ·L1 also shown as L1 on eval's [0, 1] scale).

**Training** (an instance holds the initialised networks ``G`` and ``D``;
``__init__`` builds and initialises them, N(0, 0.02) unless the family says otherwise)

* ``generate(batch, G=None)`` -- run the generator(s) on a batch; returns the
  *fakes*, whatever the other methods need (a tensor, or a dict).
* ``d_terms(batch, fakes)`` -- the discriminator's terms: a list of
  ``(log name, D module, real input, fake input)``; the trainer applies the
  objective to each (detaching the fake input) and sums them.
* ``g_terms(batch, fakes)`` -- ``(adversarial, extra)``: a list of
  ``(log name, D module, fake input)`` scored with the generator's objective,
  and a dict of extra loss terms already weighted (pix2pix: ``{"G_L1": λ·L1}``).
  An entry may add a fourth item, the real input D compares it with: where the
  instance's ``lambda_feat`` is above 0 the trainer then adds ``G_feat``, that
  weight times the L1 between D's features on the two (pix2pixHD's feature matching;
  D then needs ``features(x)``, as :mod:`img2img.nets.patchgan`'s have).  D's output may be a
  list of logit maps (a multi-scale D): the objective is averaged over them.
* ``preview_batch(dataset)`` -- the fixed inputs of the sample grids;
  ``display(batch, fakes)`` -- the grid's columns as RGB (N, 3, H, W) in [0, 1];
  ``prepare_eval(G)`` -- the generator as it runs for samples and model.pt.
* ``state_dict()`` / ``load_state_dict(s)`` -- any state of the family itself
  (e.g. an image history pool), saved in latest.pt so a resumed run is exact.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np

import torch
import torch.nn as nn

from ..config import FamilySettings, RunConfig
from ..nets import init_weights

Tensor = torch.Tensor


class Family:
    name: ClassVar[str] = ""
    data: ClassVar[str] = "pairs"
    conditional: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {}
    loss_names: ClassVar[tuple[str, ...]] = ()
    d_loss_scale: ClassVar[float] = 1.0
    size_flag: ClassVar[str] = "--size"
    settings: ClassVar[type[FamilySettings]] = FamilySettings
    io_names: ClassVar[tuple[str, str]] = ("image", "output")
    inference_note: ClassVar[str] = "dropout off"
    validates: ClassVar[bool] = False
    lambda_feat: float = 0.0          # weight of D feature matching (the translation families: --lambda-feat)

    # -- configuration and networks ---------------------------------------------------
    @classmethod
    def configure(cls, cfg: RunConfig, given: set[str]) -> None:
        """Fill in settings derived from others (only those not in ``given``)."""

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        """Raise ConfigError (one line) if ``cfg`` breaks a rule of this family."""

    @classmethod
    def build_generator(cls, cfg: RunConfig) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def build_discriminator(cls, cfg: RunConfig) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def dataset(cls, cfg: RunConfig, train: bool = True):
        raise NotImplementedError

    @classmethod
    def to_rgb(cls, x: Tensor, cfg: RunConfig) -> Tensor:
        raise NotImplementedError

    @classmethod
    def inference_module(cls, G: nn.Module, cfg: RunConfig, direction: str | None = None) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def export_module(cls, G: nn.Module, cfg: RunConfig, direction: str | None = None) -> nn.Module:
        return cls.inference_module(G, cfg, direction)

    @classmethod
    def directions(cls, cfg: RunConfig) -> tuple[str, ...]:
        return ()

    @classmethod
    def example_inputs(cls, cfg: RunConfig, seed: int = 0) -> list[Tensor]:
        raise NotImplementedError

    @classmethod
    def input_images(cls, cfg: RunConfig, root, direction: str) -> tuple[int, Callable[[int], np.ndarray]]:
        raise NotImplementedError

    @classmethod
    def size_multiple(cls, cfg: RunConfig) -> int:
        return 1

    @classmethod
    def loaded(cls, G: nn.Module, cfg: RunConfig, state: dict) -> nn.Module:
        return G.eval()

    @classmethod
    def validation_sets(cls, cfg: RunConfig) -> list:
        """The held-out data (``--val`` or ``--val-split``) as :class:`~img2img.data.holdout.HeldOut` lists."""
        return []

    @classmethod
    def validation_label(cls, cfg: RunConfig, sets: list) -> str:
        """What the validation figures compare, in words, with the counts of ``sets``."""
        return ""

    @classmethod
    def loss_axes(cls, cfg: RunConfig) -> dict[str, tuple[str, float | None, str]]:
        """Logged loss -> (its axis label, a factor or None, the label of a second axis showing value × factor)."""
        return {"D": ("D loss", None, ""), "G_GAN": ("G adversarial loss", None, ""),
                "GP": ("gradient penalty (unweighted)", None, "")}

    # -- training -----------------------------------------------------------------------
    def __init__(self, cfg: RunConfig):
        """Builds G, then D, each initialised N(0, 0.02) (override for another initialisation)."""
        self.cfg = cfg
        self.G = init_weights(self.build_generator(cfg))
        self.D = init_weights(self.build_discriminator(cfg))

    def generate(self, batch: dict, G: nn.Module | None = None) -> Any:
        raise NotImplementedError

    def d_terms(self, batch: dict, fakes) -> list[tuple[str, nn.Module, Tensor, Tensor]]:
        raise NotImplementedError

    def g_terms(self, batch: dict, fakes) -> tuple[list[tuple[str, nn.Module, Tensor]], dict[str, Tensor]]:
        raise NotImplementedError

    def preview_batch(self, dataset) -> dict:
        raise NotImplementedError

    def display(self, batch: dict, fakes) -> list[Tensor]:
        raise NotImplementedError

    def prepare_eval(self, G: nn.Module) -> nn.Module:
        return G.eval()

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
