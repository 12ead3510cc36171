"""Model families and their registry: the one place where a model's kind is looked up.

::

    from img2img import families
    cfg = families.make_config(pairs="data/facades", epochs=5)   # defaults of the family
    fam = families.get(cfg.model.kind)                           # its Family subclass
    model = fam(cfg)                                             # G and D, initialised

Everything that differs between model families lives in their modules (see
:mod:`img2img.families.base` for what a family provides); no other module
compares ``kind`` to a name.  To add a family, write ``families/NAME.py`` with
a :class:`~img2img.families.base.Family` subclass and add one line to
:data:`FAMILIES`.  Family modules are imported on first use.
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import DATA_SOURCES, MAX_PARAMETERS, ConfigError, RunConfig

if TYPE_CHECKING:
    from .base import Family

# kind -> "module:class" under img2img/families; the first family of each data source
# (Family.data) is the one that source picks when no --model is given
FAMILIES: dict[str, str] = {
    "pix2pix": "pix2pix:Pix2Pix",
    "dcgan": "dcgan:DCGAN",
    "mlp": "mlp:MLPGAN",
    "cyclegan": "cyclegan:CycleGAN",
    "cut": "cut:CUT",
    "fastcut": "cut:FastCUT",
}


def names() -> tuple[str, ...]:
    """The model kinds, in registry order (no family module is imported)."""
    return tuple(FAMILIES)


def get(kind: str) -> type[Family]:
    """The Family subclass of ``kind``; ConfigError (one line) for an unknown kind."""
    if not isinstance(kind, str) or kind not in FAMILIES:
        raise ConfigError(f"unknown model kind {kind!r}; choose one of {', '.join(FAMILIES)}")
    module, cls = FAMILIES[kind].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def for_data(source: str) -> type[Family]:
    """The family that the data setting ``source`` (``pairs``, ``images``) trains by default."""
    for kind in FAMILIES:
        fam = get(kind)
        if fam.data == source:
            return fam
    raise ConfigError(f"no model family trains on --{source}")


def make_config(base: RunConfig | None = None, **settings: Any) -> RunConfig:
    """A RunConfig from flat settings (``pairs=..., epochs=..., ngf=...``).

    Field names are unique across the sections of the config (model, data,
    train and the family's own settings), so every keyword goes to exactly one
    of them; a setting of another family is a ConfigError.  Without ``base``,
    the family is ``kind`` or, when not given, the one its data setting picks
    (``images=`` alone means dcgan); its ``defaults`` replace the dataclasses'
    defaults and its ``configure`` fills in derived settings (e.g. pix2pix's
    image size and U-Net depth from the crop size), each only where not given.
    With ``base`` (a stored config, on resume) only ``settings`` change.
    """
    settings = canonical_settings(settings)
    if base is not None:
        fam = None
        cfg = RunConfig.from_dict(base.to_dict(), type(base.family))
    else:
        kind = settings.get("kind")
        if kind is None:
            sources = [s for s in DATA_SOURCES if settings.get(s) is not None]
            fam = for_data(sources[0]) if len(sources) == 1 else get(names()[0])
        else:
            fam = get(kind)
        cfg = RunConfig(family=fam.settings())
        for name, value in {"kind": fam.name, **fam.defaults}.items():
            if name not in settings:
                setattr(cfg.holder(name), name, value)
    for name, value in settings.items():
        setattr(holder(cfg, name), name, value)
    cfg.check_types()                      # (configure computes with the values)
    if fam is not None:
        fam.configure(cfg, set(settings))
    return cfg


def holder(cfg: RunConfig, name: str):
    """The section of ``cfg`` that holds setting ``name``; ConfigError (one line) for a setting of
    another model family (``--pool-size is a setting of cyclegan, not of pix2pix``) or of none."""
    try:
        return cfg.holder(name)
    except ConfigError:
        owners = [k for k in FAMILIES if name in {f.name for f in dataclasses.fields(get(k).settings)}]
        if not owners:
            raise
        raise ConfigError(f"--{name.replace('_', '-')} is a setting of {' and '.join(owners)}, "
                          f"not of {cfg.model.kind}") from None


def config_from_dict(d: Any) -> RunConfig:
    """:meth:`RunConfig.from_dict` with the settings class of the family ``d`` names (its
    ``model.kind``; pix2pix when it names none); ConfigError for an unknown kind."""
    model = d.get("model") if isinstance(d, dict) else None
    kind = model.get("kind", names()[0]) if isinstance(model, dict) else names()[0]
    return RunConfig.from_dict(d, get(kind).settings)


# the command line's spellings that differ from the config's field names: train(model="dcgan", size=32)
# works like the CLI's --model dcgan --size 32
KEYWORD_ALIASES = {"model": "kind", "size": "image_size", "n_layers_d": "d_layers"}


def canonical_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the CLI spellings (KEYWORD_ALIASES) renamed to config field names."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for name, value in settings.items():
        field = KEYWORD_ALIASES.get(name, name)
        if field in out:
            raise ConfigError(f"{given[field]}= and {name}= are the same setting; give one")
        out[field], given[field] = value, name
    return out


def check(cfg: RunConfig, data: bool = True) -> RunConfig:
    """Validate ``cfg`` (shared rules, then the family's, then the networks' size); ConfigError in one line.

    ``data=False`` skips the training-data settings (for configs stored in model files).
    The networks are counted on the meta device (:func:`meta_networks`), so a config that
    asks for more than :data:`~img2img.config.MAX_PARAMETERS` is refused without building anything.
    """
    if not isinstance(cfg, RunConfig):
        raise ConfigError(f"expected a RunConfig, got {type(cfg).__name__}")
    fam = get(cfg.model.kind)
    if type(cfg.family) is not fam.settings:
        raise ConfigError(f"a {fam.name} config needs {fam.name}'s settings ({fam.settings.__name__}), not "
                          f"{type(cfg.family).__name__}; make it with make_config or config_from_dict")
    try:
        cfg.validate()
    except ConfigError as e:                  # the model's image size has a family-specific flag
        raise ConfigError(str(e).replace("image size must", f"image size ({fam.size_flag}) must", 1)) from None
    if data:
        if getattr(cfg.data, fam.data) is None:
            raise ConfigError(f"{fam.name} needs --{fam.data} {DATA_SOURCES[fam.data]}")
        for other in DATA_SOURCES:
            if other != fam.data and getattr(cfg.data, other) is not None:
                raise ConfigError(f"{fam.name} trains on --{fam.data}, not --{other}")
    if cfg.data.validation() and not fam.validates:
        which = ", ".join(k for k in FAMILIES if get(k).validates)
        raise ConfigError(f"{fam.name} has no validation while training (it draws from noise: there is no target "
                          f"to compare with); --val and --val-split are for {which}")
    fam.check(cfg)
    G, D = meta_networks(cfg)
    n = sum(p.numel() for p in G.parameters()) + sum(p.numel() for p in D.parameters())
    if n > MAX_PARAMETERS:
        raise ConfigError(f"these settings make networks of {n / 1e9:.1f} G parameters; the limit is "
                          f"{MAX_PARAMETERS / 1e9:.0f} G ({4 * MAX_PARAMETERS / 1e9:.0f} GB of float32 weights); "
                          "use a smaller --ngf/--ndf or image size")
    return cfg


def meta_networks(cfg: RunConfig):
    """(G, D) of ``cfg`` built on the meta device: shapes only, no memory, nothing initialised."""
    import torch
    fam = get(cfg.model.kind)
    with torch.device("meta"):
        return fam.build_generator(cfg), fam.build_discriminator(cfg)


def weights_problem(cfg: RunConfig, weights: Any, which: str = "G") -> str | None:
    """What keeps the state dict ``weights`` from loading into network ``which`` ("G" or "D") of
    ``cfg`` -- a missing or unexpected entry, a shape that differs -- or None if it fits.

    Compared with the network built on the meta device, before anything real is built, so a
    file whose config asks for a huge network but holds small weights costs nothing."""
    import torch
    if not isinstance(weights, dict):
        return f"the {which} weights are a {type(weights).__name__}, not a state dict"
    net = meta_networks(cfg)[0 if which == "G" else 1]
    want = net.state_dict()
    for key, ref in want.items():
        got = weights.get(key)
        if not isinstance(got, torch.Tensor):
            return f"{which} weights have no {key}" if got is None else f"{which} weight {key} is not a tensor"
        if tuple(got.shape) != tuple(ref.shape):
            return (f"{which} weight {key} has shape {tuple(got.shape)}, the stored config needs "
                    f"{tuple(ref.shape)}")
    extra = sorted(set(weights) - set(want))
    if extra:
        return f"{which} weights have an entry the stored config does not make ({extra[0]})"
    return None


def stored_config(ckpt: dict[str, Any], path: str | Path, what: str = "checkpoint") -> RunConfig:
    """The checked RunConfig inside a loaded checkpoint (or, with ``what``, another model file's stored
    config as a dict); CheckpointError (one line) if it is malformed or out of range."""
    from ..checkpoint import CheckpointError
    try:
        return check(config_from_dict(ckpt["config"]), data=False)
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as e:
        text = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: the configuration stored in this {what} is invalid ({text})") from None


def pick_direction(cfg: RunConfig, direction: str | None, source: str = "") -> str:
    """The direction an image-to-image model runs in: ``direction`` if it translates that way (CycleGAN:
    either), None for its default (pix2pix: the direction it was trained in).  ConfigError (one line)
    otherwise, and for a model that draws from noise."""
    fam = get(cfg.model.kind)
    if not fam.conditional:
        raise ConfigError(f"{source or 'model'}: a {cfg.model.kind} model generates from noise; "
                          "translate and eval need an image-to-image model (e.g. pix2pix, cyclegan)")
    ways = fam.directions(cfg)
    if direction is None:
        return ways[0]
    if direction not in ways:
        only = f"translates {ways[0]} only (the direction it was trained in)" if len(ways) == 1 else \
            f"translates {' or '.join(ways)}"
        raise ConfigError(f"{source or 'model'}: this {cfg.model.kind} model {only}, not {direction}")
    return direction


def make_dataset(cfg: RunConfig, train: bool = True):
    """The training set a RunConfig describes."""
    return get(cfg.model.kind).dataset(cfg, train)
