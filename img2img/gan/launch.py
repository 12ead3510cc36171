"""Starting and resuming a training run: :func:`train`, the one entry point of the CLI and the API.

* :func:`train` -- a new run in an empty run folder, or (``resume=True``) the run in it
  continued from its latest.pt, with only the resumable settings changed;
* a hand-edited ``RUN/config.json`` is never dropped silently (:func:`_check_config_edits`);
* the run folder is locked while the run lasts; a busy, unwritable or read-only folder is a
  one-line error (:func:`_run_lock`);
* :func:`check_run_folder` -- the run folder never lies in (or holds) the training data.

The loop itself is :class:`img2img.gan.trainer.Trainer`.
"""
from __future__ import annotations

import contextlib
import errno
import json
import sys
from pathlib import Path

from .. import families
from ..checkpoint import CheckpointError, load_checkpoint
from ..config import DATA_SOURCES, RESUMABLE, ConfigError, RunConfig, spelled
from ..files import FolderBusy, folder_lock, printable, within
from . import distributed
from .trainer import Trainer


def train(config: RunConfig | None = None, *, resume: bool = False, dataset=None, **settings) -> Path:
    """Train a model and return its run folder.

    ``settings`` are flat :mod:`img2img.config` field names, e.g.
    ``train(pairs="data/facades", out="runs/facades", direction="BtoA", epochs=5)``.
    With ``resume=True`` the run in ``out`` continues from its latest.pt; only
    training-length and runtime settings (``RESUMABLE``) may change then.
    The CLI's spellings work too: ``model=`` for ``kind``, ``size=`` for ``image_size``.

    The run folder is locked while the run lasts (:func:`img2img.files.folder_lock`): a second
    training on the same folder is refused in one line naming the holder.
    """
    settings = families.canonical_settings(settings)
    if resume:
        out = settings.get("out") or (config.train.out if config is not None else None)
        if not out:
            raise ConfigError("--resume needs the run folder (--out RUN or --resume RUN)")
        if not Path(out).is_dir():
            raise ConfigError(f"{Path(out) / 'latest.pt'}: nothing to resume (no checkpoint in {out})")
        with _run_lock(out):
            trainer = _resumed(Path(out), settings, dataset)
            return _fit(trainer)
    cfg = families.check(families.make_config(config, **settings))
    check_run_folder(cfg)
    out = Path(cfg.train.out)
    with _run_lock(out):
        if (out / "latest.pt").exists():
            raise ConfigError(f"{out} already holds a run (latest.pt); continue it with --resume or choose another --out")
        return _fit(Trainer(cfg, dataset=dataset))


def _fit(trainer: Trainer) -> Path:
    """Run the loop; under torchrun, every rank leaves when rank 0 has written its last file, and
    the process group is taken down however the run ended."""
    try:
        out = trainer.fit()
        distributed.barrier()
        return out
    finally:
        distributed.cleanup()


def _resumed(out: Path, settings: dict, dataset) -> "Trainer":
    """The Trainer that continues the run in ``out`` (whose lock is held)."""
    path = out / "latest.pt"
    if not path.exists():
        raise ConfigError(f"{path}: nothing to resume (no checkpoint in {out})")
    ckpt = load_checkpoint(path)
    base = families.stored_config(ckpt, path)
    missing = sorted({"G", "D", "opt_g", "opt_d", "meters", "step", "elapsed", "rng"} - set(ckpt["state"]))
    if missing:
        raise CheckpointError(f"{path}: holds no full training state (missing {', '.join(missing)}); "
                              "--resume needs the latest.pt written by img2img train, not a model.pt")
    for which in ("G", "D"):                  # compared on the meta device, before building the networks
        problem = families.weights_problem(base, ckpt["state"][which], which)
        if problem:
            raise CheckpointError(f"{path}: its training state does not fit the stored configuration ({problem})")
    fixed = sorted(k for k, v in settings.items() if k not in RESUMABLE and k != "out"
                   and getattr(families.holder(base, k), k) != v)
    if fixed:
        raise ConfigError(f"--resume continues {out} with the settings stored in its checkpoint; "
                          f"these cannot change: {', '.join('--' + k.replace('_', '-') for k in fixed)}")
    _check_config_edits(out / "config.json", base, path, given=set(settings))
    cfg = families.make_config(base, **{k: v for k, v in settings.items() if k in RESUMABLE})
    cfg.train.out = str(out)
    check_run_folder(families.check(cfg))
    return Trainer(cfg, dataset=dataset, checkpoint=ckpt)


def _check_config_edits(path: Path, base: RunConfig, checkpoint: Path, given: set[str]) -> None:
    """A resumed run takes its settings from the checkpoint and rewrites config.json from them, so a
    hand edit of config.json would be undone without a word.  Refuse edits of settings that cannot
    change on resume; for resumable ones not set on the command line, say how to set them."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror}); fix or delete it (the checkpoint holds the "
                          "settings; resume rewrites config.json from them)") from None
    try:
        stored = json.loads(text)
        if not isinstance(stored, dict) or not all(isinstance(v, dict) for v in stored.values()):
            raise ValueError("not an object of model, data and train sections")
    except ValueError as e:
        raise ConfigError(f"{path}: does not parse ({printable(str(e).splitlines()[0])}); fix or delete it (the "
                          "checkpoint holds the settings; resume rewrites config.json from them)") from None
    ours = json.loads(json.dumps(base.to_dict()))          # as JSON has it (tuples as lists)
    edits = [(k, v, ours[section][k]) for section, values in stored.items() if section in ours
             for k, v in values.items() if k in ours[section] and k != "out" and v != ours[section][k]]
    fixed = [e for e in edits if e[0] not in RESUMABLE]
    name = checkpoint.name
    if fixed:
        said = ", ".join(f"{k} is {v!r} there but {was!r} in {name}" for k, v, was in fixed)
        raise ConfigError(f"{path}: edited by hand ({said}); a resumed run keeps the model and data settings of "
                          "its checkpoint and rewrites config.json from them: undo the edit, or start a new run "
                          "with --out")
    notes = [(k, v, was) for k, v, was in edits if k not in given]
    if notes and distributed.env_rank() == 0:
        said = ", ".join(f"{k} {v!r} where {name} has {was!r}" for k, v, was in notes)
        flags = [spelled(k, v) for k, v, _ in notes]
        how = (f"to change them pass {' '.join(f for f in flags if f)}" if all(flags) else
               "; ".join(f"pass {f}" if f else f"no flag sets {k} to {v!r}" for (k, v, _), f in zip(notes, flags)))
        print(printable(f"note: {path} sets {said}; resume uses {name}'s values and rewrites config.json; {how}"),
              file=sys.stderr)


def check_run_folder(cfg: RunConfig) -> None:
    """Refuse a run folder that would write into the training data: --out equal to or inside
    --pairs/--images, or the data inside the folder the sample grids go to (symbolic links resolved)."""
    out = Path(cfg.train.out)
    for source in DATA_SOURCES:
        data = getattr(cfg.data, source)
        if data is None or not Path(data).exists():
            continue
        if Path(data).is_dir() and within(out, data):
            raise ConfigError(f"--out {out} is {'the' if Path(out).resolve() == Path(data).resolve() else 'inside the'} "
                              f"training data folder --{source} {data}; the run would write its files (and sample "
                              "grids) among the data it trains on; choose an --out outside it")
        if within(data, out / "samples"):
            raise ConfigError(f"--{source} {data} is inside {out / 'samples'}, where the run writes its sample "
                              "grids; choose another --out")


@contextlib.contextmanager
def _run_lock(out: str | Path):
    """The run folder's lock, taken by rank 0 only (the one process that writes; other ranks of a
    torchrun job share the run).  A busy folder is a ConfigError naming the holder."""
    if distributed.env_rank() != 0:
        yield
        return
    held = contextlib.ExitStack()
    try:                      # only the taking of the lock: errors of the training itself pass through
        held.enter_context(folder_lock(out))
    except FolderBusy as e:
        raise ConfigError(f"{e.folder} is in use by another training ({e.holder or 'pid unknown'}); "
                          "wait for it to finish, or choose another --out") from None
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        why = "is on a read-only file system" if e.errno == errno.EROFS else "is not writable by you"
        if (Path(out) / "latest.pt").exists():
            raise ConfigError(f"{out}: the run folder {why} ({e.filename or out}: {e.strerror}), so training "
                              "cannot continue there; translate, eval and export read from it as it is; to train on, "
                              f"copy it (cp -r {out} NEW) and run train --resume NEW") from None
        raise ConfigError(f"{out}: the run folder {why} ({e.filename or out}: {e.strerror}); "
                          "choose another --out") from None
    with held:
        yield


__all__ = ["check_run_folder", "train"]
