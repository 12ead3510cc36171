"""Command line: argparse sub-commands that call the Python API, nothing else.

Flags default to "not given" (argparse.SUPPRESS) so that the dataclasses in
:mod:`img2img.config` stay the one source of defaults, and so that
``--resume`` knows which settings the user actually typed.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from . import __version__
from .config import DataConfig, ModelConfig, TrainConfig

_DEFAULTS = {f.name: f.default for k in (ModelConfig, DataConfig, TrainConfig) for f in fields(k)}


def _d(name: str) -> str:
    v = _DEFAULTS[name]
    return "" if v is None else f" (default: {v})"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=32, width=100)


def _add(group, *flags, dest, help, default_of=None, **kw):
    help = help + (_d(default_of or dest) if (default_of or dest) in _DEFAULTS else "")
    group.add_argument(*flags, dest=dest, default=argparse.SUPPRESS, help=help, **kw)


TRAIN_EPILOG = """\
examples:
  # pix2pix on AB files (A left, B right), outline -> photo:
  img2img train --pairs ../shared/data/silhouettes/train --direction BtoA --out runs/sil
  # the bundled demo set, small and quick (a couple of minutes on 2 CPU cores):
  img2img train --pairs datasets/shapes --out runs/demo --load-size 72 --crop-size 64 --epochs 4 --epochs-decay 2
  # continue a run where it stopped (optionally with more epochs):
  img2img train --out runs/sil --resume --epochs 20
  # colorization of a photo folder in Lab (L -> ab):
  img2img train --pairs photos/ --colorization --out runs/color

data layouts for --pairs DIR (searched recursively; jpg/png/bmp/webp/tiff; any size):
  AB files   each image holds A on its left half and B on its right half
  A/ + B/    DIR/A/name.* pairs with DIR/B/name.* (same relative name, same size)
Every file is checked before training starts; a bad file (undecodable, odd AB width,
missing partner, A/B size mismatch) stops the run with a one-line message naming it,
unless --skip-bad is given, which leaves bad files out and reports how many.

the run folder (--out) receives config.json, log.jsonl (raw losses per step), latest.pt
(full state for --resume, written atomically), model.pt (generator + config, for
translate/export), samples/epoch_NNN.png (input | output | target) and losses.png.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="img2img", formatter_class=_Formatter,
                                description="Image-to-image translation (pix2pix) on a general GAN core.")
    p.add_argument("--version", action="version", version=f"img2img {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", formatter_class=_Formatter, epilog=TRAIN_EPILOG,
                       help="train a model (pix2pix on --pairs)",
                       description="Train pix2pix on paired images: an 8-level U-Net generator and a 70x70 "
                                   "PatchGAN discriminator, GAN + lambda*L1 loss. Progress bars show "
                                   "EMA-smoothed losses; raw losses go to RUN/log.jsonl.")
    g = t.add_argument_group("data")
    _add(g, "--pairs", dest="pairs", metavar="DIR", help="folder of pairs: AB files, or A/ and B/ sub-folders")
    _add(g, "--direction", dest="direction", choices=["AtoB", "BtoA"], help="which side is the input")
    _add(g, "--load-size", dest="load_size", type=int, metavar="N", help="resize images to NxN first")
    _add(g, "--crop-size", dest="crop_size", type=int, metavar="N",
         help="then take a random NxN crop; this is the model's image size")
    _add(g, "--no-flip", dest="flip", action="store_false", help="no random horizontal flips", default_of=None)
    _add(g, "--no-crop", dest="crop", action="store_false", help="resize straight to --crop-size, no random crop")
    _add(g, "--no-resize", dest="resize", action="store_false",
         help="crop at the images' own size (smaller images are padded with white)")
    _add(g, "--color", dest="color", choices=["rgb", "lab"],
         help="color space the networks work in (lab: L/50-1, ab/110, via kornia)")
    _add(g, "--colorization", dest="colorization", action="store_true",
         help="single-image folder; learn L -> ab (1-channel in, 2 out); outputs recombined with L")
    _add(g, "--skip-bad", dest="skip_bad", action="store_true", help="leave bad files out instead of refusing")
    _add(g, "--workers", dest="workers", type=int, metavar="N", help="data-loading processes")

    g = t.add_argument_group("model")
    _add(g, "--input-nc", dest="input_nc", type=int, choices=[1, 3], help="input channels (1: gray)")
    _add(g, "--output-nc", dest="output_nc", type=int, choices=[1, 3], help="output channels")
    _add(g, "--ngf", dest="ngf", type=int, metavar="N", help="generator width (64: 54.4M parameters)")
    _add(g, "--ndf", dest="ndf", type=int, metavar="N", help="discriminator width")
    _add(g, "--depth", dest="depth", type=int, metavar="N",
         help="U-Net levels (default: down to 1x1 at the crop size, at most 8; 8 for 256, 7 for 128)")
    _add(g, "--d-layers", dest="d_layers", type=int, metavar="N", help="strided PatchGAN layers (3: 70x70 patches)")
    _add(g, "--dropout", dest="dropout", type=float, metavar="P", help="dropout in the 3 innermost decoder levels")

    g = t.add_argument_group("training")
    _add(g, "--out", dest="out", metavar="RUN", help="run folder")
    _add(g, "--resume", dest="resume", nargs="?", const=True, metavar="RUN",
         help="continue the run in RUN (or --out) exactly where it stopped")
    _add(g, "--epochs", dest="epochs", type=int, metavar="N", help="epochs at the initial learning rate")
    _add(g, "--epochs-decay", dest="epochs_decay", type=int, metavar="N", help="epochs of linear decay to 0")
    _add(g, "--max-steps", dest="max_steps", type=int, metavar="N", help="stop after N steps (quick runs)")
    _add(g, "--time-limit", dest="time_limit", type=float, metavar="MIN",
         help="stop after MIN minutes of training (a checkpoint is written)")
    _add(g, "--batch-size", dest="batch_size", type=int, metavar="N", help="images per step")
    _add(g, "--lr", dest="lr", type=float, help="Adam learning rate")
    _add(g, "--beta1", dest="beta1", type=float, help="Adam beta1")
    _add(g, "--lambda-l1", dest="lambda_l1", type=float, metavar="L", help="weight of the L1 term")
    _add(g, "--g-ema", dest="g_ema", type=float, metavar="DECAY",
         help="keep an EMA of the generator's weights and use it for samples and model.pt (0: off)")
    _add(g, "--objective", dest="objective", choices=["nonsat", "minimax", "lsgan", "hinge", "wgan-gp"],
         help="GAN objective")
    _add(g, "--d-steps", dest="d_steps", type=int, metavar="K", help="discriminator updates per generator update")
    _add(g, "--seed", dest="seed", type=int, help="random seed (data order, augmentation, init, dropout)")
    _add(g, "--device", dest="device", metavar="DEV", help="auto, cpu, cuda or cuda:N")
    _add(g, "--no-channels-last", dest="channels_last", action="store_false",
         help="keep tensors in NCHW layout (channels_last is usually faster)")
    _add(g, "--sample-every", dest="sample_every", type=int, metavar="N",
         help="write a sample grid every N steps (0: once per epoch)")
    _add(g, "--save-every", dest="save_every", type=int, metavar="N",
         help="write latest.pt every N steps (0: once per epoch)")
    _add(g, "--no-progress", dest="progress", action="store_false", help="no progress bar")
    t.set_defaults(func=cmd_train)

    # Other sub-commands: one _add_<name>_parser(sub) function each, called here.
    return p


def cmd_train(args: argparse.Namespace) -> int:
    from .gan.trainer import train
    settings = {k: v for k, v in vars(args).items() if k not in ("func", "command", "resume")}
    resume = getattr(args, "resume", None)
    if isinstance(resume, str):
        settings["out"] = resume
    if not resume and "pairs" not in settings:
        raise _usage("train needs --pairs DIR (or --resume RUN)")
    train(resume=bool(resume), **settings)
    return 0


class _UsageError(Exception):
    pass


def _usage(msg: str) -> _UsageError:
    return _UsageError(msg)


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data.io import DataError
    from .gan.trainer import TrainingError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ConfigError, DataError, CheckpointError, _UsageError) as e:
        print(f"img2img {args.command}: error: {e}", file=sys.stderr)
        return 2
    except TrainingError as e:
        print(f"img2img {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"img2img {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
