"""Command line: argparse sub-commands that call the Python API, nothing else.

Flags default to "not given" (argparse.SUPPRESS) so that the dataclasses in
:mod:`img2img.config` and the model families' ``defaults`` stay the one source
of defaults (shown in --help from there), and so that ``--resume`` knows which
settings the user actually typed.  Choice lists come from the same constants.
Only the arguments of the sub-command being run are built, so ``--help`` and
``--version`` do not import torch.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import fields

from . import __version__
from .config import (DATA_SOURCES, DEFAULT_OPSET, DIRECTIONS, EXPORTERS, FORMATS, POLICY_ALIASES, DataConfig,
                     ModelConfig, TrainConfig, field_types, flags_of)
from .files import printable

_DEFAULTS = {f.name: f.default for k in (ModelConfig, DataConfig, TrainConfig) for f in fields(k)}
COMMANDS = ("train", "translate", "eval", "export", "sample", "data", "serve")


def _d(name: str, base: bool = True) -> str:
    """' (default: V; FAMILY: W; ...)' from the dataclasses (unless not ``base``) and the families' own defaults."""
    from . import families
    v = _DEFAULTS[name]
    own = [f"{kind}: {families.get(kind).defaults[name]}" for kind in families.names()
           if name in families.get(kind).defaults and families.get(kind).defaults[name] != v]
    parts = ([] if v is None or not base else [str(v)]) + own
    return f" (default: {'; '.join(parts)})" if parts else ""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=32, width=100)


def _add(group, *flags, dest, help, default_of=None, **kw):
    flag = kw.get("action") in ("store_true", "store_false")     # on/off switches: the flag says it all
    help = help + (_d(default_of or dest) if (default_of or dest) in _DEFAULTS and not flag else "")
    group.add_argument(*flags, dest=dest, default=argparse.SUPPRESS, help=help, **kw)


TRAIN_EPILOG = """\
examples:
  # pix2pix on AB files (A left, B right), outline -> photo:
  img2img train --pairs data/silhouettes/train --direction BtoA --out runs/sil
  # the bundled demo set, small and quick (a couple of minutes on 2 CPU cores):
  img2img train --pairs datasets/shapes/train --out runs/demo --crop-size 128 --no-crop --ngf 16 --ndf 32 --epochs 5 --epochs-decay 5
  # continue a run where it stopped (optionally with more epochs):
  img2img train --out runs/sil --resume --epochs 20
  # colorization of a photo folder in Lab (L -> ab):
  img2img train --pairs photos/ --colorization --out runs/color
  # hold 20% of the pairs out, score them after every epoch, keep the best generator, log to TensorBoard:
  img2img train --pairs data/train --val-split 0.2 --best-by l1 --tensorboard --out runs/sil
  tensorboard --logdir runs/sil/tb            # or open runs/sil/index.html in a browser
  # profile 5 steps (after a warm-up): runs/sil/profile/trace.json for chrome://tracing / Perfetto
  img2img train --pairs data/train --profile 5 --max-steps 10 --out runs/prof

data layouts for --pairs DIR (searched recursively; jpg/png/bmp/webp/tiff; any size):
  AB files   each image holds A on its left half and B on its right half
  A/ + B/    DIR/A/name.* pairs with DIR/B/name.* (same relative name, same size)
Every file is checked before training starts; a bad file (undecodable, odd AB width,
missing partner, A/B size mismatch) stops the run with a one-line message naming it,
unless --skip-bad is given, which leaves bad files out and reports how many.

the run folder (--out) receives config.json, log.jsonl (raw losses per step, and each
validation pass), latest.pt (full state for --resume, written atomically; ~0.9 GB for the
default pix2pix), model.pt (generator + config, for translate/export; ~0.2 GB), best.pt
(the same from the best validation pass), samples/epoch_NNN.png (input | output | target),
losses.png, index.html (the run page: open it in a browser), and with the options below
snapshots/, tb/ and profile/.
"""


HELP = {
    "train": "train a model (pix2pix on --pairs, cyclegan on --unpaired, dcgan or mlp on --images)",
    "translate": "translate a folder of images (or one image) with a trained model",
    "eval": "score a model on held-out pairs (L1, PSNR, SSIM) with an HTML report",
    "export": "export a generator to ONNX (RGB in/out, verified against torch)",
    "sample": "draw images from a trained dcgan/mlp model",
    "data": "prepare data sets: resize, grayscale, blank, edges, combine, split-ab, split, download",
    "serve": "a local web page (Gradio) to try a model: draw/upload -> translation, or samples",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser.  With ``command``, only that sub-command gets its arguments (the others
    are listed by name, and "" builds none), so that building it imports nothing heavy;
    None builds them all."""
    p = argparse.ArgumentParser(prog="img2img", formatter_class=_Formatter,
                                description="Image-to-image translation (pix2pix) on a general GAN core.")
    p.add_argument("--version", action="version", version=f"img2img {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    builders = {"train": _add_train_parser, "data": _add_data_parser, "sample": _add_sample_parser,
                "translate": _add_translate_parser, "eval": _add_eval_parser, "export": _add_export_parser,
                "serve": _add_serve_parser}
    for name in COMMANDS:
        if command in (None, name):
            builders[name](sub)
        else:
            sub.add_parser(name, help=HELP[name])
    return p


def _add_train_parser(sub) -> None:
    from . import families
    t = sub.add_parser("train", formatter_class=_Formatter, epilog=TRAIN_EPILOG, help=HELP["train"],
                       description="Train pix2pix on paired images: an 8-level U-Net generator and a 70x70 "
                                   "PatchGAN discriminator, GAN + lambda*L1 loss. Progress bars show "
                                   "EMA-smoothed losses; raw losses go to RUN/log.jsonl.")
    groups = {name: t.add_argument_group(name) for name in ("data", "model", "training",
                                                            "validation, logging and profiling")}
    for klass, section in ((DataConfig, "data"), (ModelConfig, "model"), (TrainConfig, "training")):
        for f in fields(klass):
            if "help" in f.metadata:
                _add_setting(groups[f.metadata.get("group", section)], klass, f)
            if f.name == "out":
                _add(groups["training"], "--resume", dest="resume", nargs="?", const=True, metavar="RUN",
                     help="continue the run in RUN (or --out) exactly where it stopped")
    # each family's own settings (a field shared by two families is one flag), help saying whose they are
    own = t.add_argument_group("settings of one model family (the others refuse them)")
    owners: dict[str, list] = {}
    for kind in families.names():
        klass = families.get(kind).settings
        for f in fields(klass):
            owners.setdefault(f.name, [klass, f, []])[2].append(kind)
    for klass, f, kinds in owners.values():
        _DEFAULTS[f.name] = f.default
        _add_setting(own, klass, f, f"{', '.join(kinds)}: ")
    # the two settings whose help is made from the families: by hand
    picks = ", ".join(f"{families.for_data(source).name} with --{source}" for source in DATA_SOURCES)
    _add(groups["model"], "--model", dest="kind", choices=families.names(), default_of="-",
         help=f"model family (default: {picks})")
    _add(groups["model"], "--size", dest="image_size", type=int, metavar="N", default_of="-",
         help=f"image size of {', '.join(kinds_where(size_flag='--size'))} models (dcgan: 32, 64 or 128)"
              + _d("image_size", base=False))
    t.set_defaults(func=cmd_train)


def _add_setting(group, klass, f, prefix: str = "") -> None:
    """The flag of config field ``f`` from its metadata (:func:`img2img.config.setting`): name,
    help (after ``prefix``), metavar, choices, and the type or on/off action from the field's annotation."""
    meta, types = f.metadata, field_types(klass)[f.name]
    kw: dict = {}
    if bool in types:
        kw["action"] = "store_false" if f.default else "store_true"
    else:
        value_type = next(t for t in types if t is not type(None))
        if value_type is not str:
            kw["type"] = value_type
    if "metavar" in meta:
        kw["metavar"] = meta["metavar"]
    if "choices" in meta:
        kw["choices"] = list(meta["choices"])
    _add(group, *flags_of(klass, f), dest=f.name, help=prefix + meta["help"], **kw)


def kinds_where(**attributes) -> list[str]:
    """The model kinds whose family has these attribute values, e.g. ``kinds_where(data="images")``."""
    from . import families
    return [kind for kind in families.names()
            if all(getattr(families.get(kind), a) == v for a, v in attributes.items())]


def cmd_train(args: argparse.Namespace) -> int:
    from . import families
    from .gan.launch import train
    settings = {k: v for k, v in vars(args).items() if k not in ("func", "command", "resume")}
    resume = getattr(args, "resume", None)
    if isinstance(resume, str):
        settings["out"] = resume
    if not resume and not any(source in settings for source in DATA_SOURCES):
        needs = ", ".join(f"--{source} {metavar} ({', '.join(kinds_where(data=source))})"
                          for source, metavar in DATA_SOURCES.items())
        raise _usage(f"train needs {needs} or --resume RUN")
    if not resume and "image_size" in settings:
        fam = families.get(settings["kind"]) if "kind" in settings else \
            families.for_data(next(s for s in DATA_SOURCES if s in settings))
        if fam.size_flag != "--size":
            raise _usage(f"--size is for {' and '.join(kinds_where(size_flag='--size'))}; "
                         f"{fam.name}'s image size is {fam.size_flag}")
    train(resume=bool(resume), **settings)
    return 0


SAMPLE_EPILOG = """\
examples:
  # an 8x8 grid of 64 digits from a DCGAN run, and the same 64 as separate files:
  img2img sample runs/dcgan --out digits.png --grid
  img2img sample runs/dcgan --out digits/ --n 64 --seed 1
  # a walk through noise space from seed 3 to seed 7 in 10 steps, as one row:
  img2img sample runs/dcgan --out walk.png --grid --interpolate 3 7 --steps 10

Image i of a seed is the same whatever --n is. Existing files are never replaced
unless --overwrite is given.
"""


def _add_sample_parser(sub) -> None:
    s = sub.add_parser("sample", formatter_class=_Formatter, epilog=SAMPLE_EPILOG,
                       help="draw images from a trained dcgan/mlp model",
                       description="Draw images from the generator of an unconditional model (dcgan, mlp). "
                                   "MODEL is a run folder, model.pt or latest.pt; the weight EMA is used "
                                   "when the run kept one.")
    s.add_argument("model", metavar="MODEL", help="run folder or checkpoint file")
    s.add_argument("--out", required=True, metavar="FILE_OR_DIR",
                   help="a folder for one PNG per image, or a file name (with --grid, or for one image)")
    s.add_argument("--n", type=int, default=64, metavar="N", help="how many images (default: 64)")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    s.add_argument("--grid", action="store_true", help="write one grid picture instead of one file per image")
    s.add_argument("--nrow", type=int, metavar="N", help="images per grid row (default: about square; "
                                                          "all in one row with --interpolate)")
    s.add_argument("--interpolate", nargs=2, type=int, metavar=("SEED_A", "SEED_B"),
                   help="walk from SEED_A's noise to SEED_B's instead of drawing --n images")
    s.add_argument("--steps", type=int, default=8, metavar="N", help="images in the --interpolate walk (default: 8)")
    s.add_argument("--device", default="auto", metavar="DEV", help="auto, cpu, cuda or cuda:N (default: auto)")
    s.add_argument("--overwrite", action="store_true", help="replace existing files")
    s.set_defaults(func=cmd_sample)


def cmd_sample(args: argparse.Namespace) -> int:
    from .checkpoint import resolve_checkpoint
    from .config import check_int, check_seed
    from .sampling import MAX_IMAGES, Sampler, save_samples
    check_int("--n", args.n, 1, MAX_IMAGES)                 # the ranges that need no model, before loading it
    check_seed(args.seed, "--seed")
    if args.interpolate:
        check_int("--steps", args.steps, 2, MAX_IMAGES)
        for seed in args.interpolate:
            check_seed(seed, "--interpolate seed")
    if args.nrow is not None:
        check_int("--nrow", args.nrow, 1, MAX_IMAGES)
    sampler = Sampler.load(args.model, device=args.device)
    if args.interpolate:
        sampler.check_count(args.steps, "--steps", 2)
    else:
        sampler.check_count(args.n, "--n")
    if args.interpolate:
        a, b = args.interpolate
        images, prefix, nrow = sampler.interpolate(a, b, args.steps), f"interp_{a}_{b}", args.nrow or args.steps
    else:
        images, prefix, nrow = sampler.sample(args.n, args.seed), f"seed{args.seed}", args.nrow
    try:
        paths = save_samples(images, args.out, grid=args.grid, prefix=prefix, nrow=nrow,
                             gray=sampler.cfg.model.output_nc == 1, overwrite=args.overwrite,
                             inputs=[resolve_checkpoint(args.model)])
    except (FileExistsError, ValueError) as e:
        raise _usage(str(e)) from None
    where = paths[0] if len(paths) == 1 else f"{len(paths)} files in {paths[0].parent}"
    print(printable(f"wrote {where}"), file=sys.stderr)
    return 0


DATA_EPILOG = """\
operations (each: img2img data OP --help):
  resize     crop or pad images to a square size (--ab: both halves of AB files)
  grayscale  gray images, or gray|color pairs for colorization (--layout)
  blank      inpainting pairs: centre whited out | original
  edges      edges -> photo pairs like edges2shoes (kornia Canny)
  combine    A/ and B/ folders -> AB files (names must match)
  split-ab   AB files -> A/ and B/ folders
  split      copy a folder into train/val(/test) by ratio, reproducibly (--seed)
  download   fetch and safely extract a public pix2pix data set

The folder operations only read their input (an output inside it is refused), never
replace existing outputs without --overwrite, run in parallel (--workers) and list every
file they could not read, one line each; the exit status is 1 if any failed.

example, photos -> edges->photo pairs split for training:
  img2img data edges photos/ pairs/ --thickness 2
  img2img data split pairs/ data/ --ratios 0.9 0.1
  img2img train --pairs data/train --out runs/edges
"""


def _add_data_parser(sub) -> None:
    import inspect
    import textwrap

    from . import datatools
    from .datatools import downloads

    d = sub.add_parser("data", formatter_class=_Formatter, epilog=DATA_EPILOG,
                       help="prepare data sets: resize, grayscale, blank, edges, combine, split-ab, split, download",
                       description="Data set tools: prepare, combine, split and derive image pairs; download "
                                   "the public pix2pix data sets.")
    dsub = d.add_subparsers(dest="data_op", metavar="OP")
    d.set_defaults(func=lambda args: (d.print_help(sys.stderr), 2)[1])

    def op(name, fn, help, description, example):
        description = "\n\n".join(par if "\n" in par else textwrap.fill(par, 96) for par in description.split("\n\n"))
        p = dsub.add_parser(name, formatter_class=_Formatter, help=help, description=description,
                            epilog="example:\n" + example)
        p.set_defaults(func=cmd_data, data_op=name)
        defaults = {k: v.default for k, v in inspect.signature(fn).parameters.items()}

        def opt(*flags, dest, help, **kw):
            dflt = defaults.get(dest, inspect.Parameter.empty)
            shown = not (dflt is inspect.Parameter.empty or dflt is None or isinstance(dflt, bool))
            if isinstance(dflt, (tuple, list)):
                dflt = " ".join(map(str, dflt))
            p.add_argument(*flags, dest=dest, default=argparse.SUPPRESS,
                           help=help + (f" (default: {dflt})" if shown else ""), **kw)
        return p, opt

    def folder_options(p, opt, ext=True):
        if ext:
            opt("--ext", dest="ext", metavar="EXT",
                help="output format: png, jpg, webp, ... (default: the input file's own)")
            opt("--quality", dest="quality", type=int, metavar="Q", help="JPEG/WebP quality")
        opt("--workers", dest="workers", type=int, metavar="N",
            help=f"processes working in parallel (default: CPUs, at most 8; here {datatools.default_workers()})")
        opt("--overwrite", dest="overwrite", action="store_true", help="replace outputs that already exist")
        opt("--no-progress", dest="progress", action="store_false", help="no progress bar")

    def src_out(p, src_help="folder of images (searched recursively; only read)"):
        p.add_argument("src", metavar="SRC", help=src_help)
        p.add_argument("out", metavar="OUT", help="output folder (created; must not be inside SRC)")

    layouts = ["ab", "folders", "single"]
    layout_help = "ab: one A|B file each; folders: OUT/A (derived) and OUT/B (original); single: derived only"

    p, opt = op("resize", datatools.resize, "crop or pad images to a square size",
                "Resize every image to SIZE x SIZE: crop (shorter side to SIZE, centre cut) or pad "
                "(longer side to SIZE, white borders).",
                "  img2img data resize photos/ photos256/ --size 256\n"
                "  img2img data resize maps/train maps128/ --size 128 --ab     # AB files: each half\n")
    src_out(p)
    opt("--size", dest="size", type=int, metavar="N", help="output side in pixels")
    opt("--mode", dest="mode", choices=["crop", "pad"], help="crop to fill the square, or pad with white")
    opt("--resample", dest="resample", choices=["lanczos", "bicubic", "bilinear", "nearest"],
        help="resampling filter (nearest keeps label colors exact)")
    opt("--ab", dest="ab", action="store_true", help="treat files as A|B pairs and resize each half")
    folder_options(p, opt)

    p, opt = op("grayscale", datatools.grayscale, "gray images, or gray|color pairs",
                "Convert every image to gray (ITU-R 601-2 luma); with --layout ab or folders, make "
                "gray -> color pairs.",
                "  img2img data grayscale photos/ gray/\n"
                "  img2img data grayscale photos/ gray2color/ --layout ab\n")
    src_out(p)
    opt("--layout", dest="layout", choices=layouts, help=layout_help)
    folder_options(p, opt)

    p, opt = op("blank", datatools.blank, "inpainting pairs: centre whited out | original",
                "Make inpainting pairs: A is the image with a white rectangle over its centre, B the image.",
                "  img2img data blank photos256/ inpaint/ --fraction 0.5\n")
    src_out(p)
    opt("--fraction", dest="fraction", type=float, metavar="F", help="size of the white rectangle, per side")
    opt("--layout", dest="layout", choices=layouts, help=layout_help)
    folder_options(p, opt)

    p, opt = op("edges", datatools.edges, "edges -> photo pairs (kornia Canny)",
                "Make edges -> photo pairs like edges2shoes: A is the Canny edge map of the photo (black lines "
                "on white), B the photo. Raise --low/--high for fewer edges, --sigma for smoother ones.",
                "  img2img data split-ab data/silhouettes/train work/\n"
                "  img2img data edges work/A edges2people/ --thickness 2\n"
                "  img2img train --pairs edges2people --out runs/edges2people\n")
    src_out(p, "folder of photos (searched recursively; only read)")
    opt("--low", dest="low", type=float, metavar="T", help="weak-edge threshold on the gradient magnitude")
    opt("--high", dest="high", type=float, metavar="T",
        help="strong-edge threshold (a clean black/white step scores about 2.6)")
    opt("--sigma", dest="sigma", type=float, metavar="S", help="Gaussian blur before the gradient")
    opt("--thickness", dest="thickness", type=int, metavar="PX", help="line width in pixels")
    opt("--layout", dest="layout", choices=layouts, help=layout_help)
    folder_options(p, opt)

    p, opt = op("combine", datatools.combine, "A/ and B/ folders -> AB files",
                "Put A and B images side by side (A left) in one file per pair, the pix2pix format. Files pair "
                "up by relative path without extension; unmatched files and size mismatches are listed and "
                "the other pairs are still written.",
                "  img2img data combine pairs/ pairs_ab/             # pairs/A and pairs/B\n"
                "  img2img data combine labels/ photos/ labels2photos/\n")
    p.add_argument("paths", nargs="+", metavar="DIR",
                   help="DIR OUT (DIR holds A/ and B/), or A_DIR B_DIR OUT")
    folder_options(p, opt)

    p, opt = op("split-ab", datatools.split_ab, "AB files -> A/ and B/ folders",
                "Cut every AB file into its halves: OUT/A/NAME (left) and OUT/B/NAME (right).",
                "  img2img data split-ab data/silhouettes/train silhouettes_ab/\n")
    src_out(p, "folder of AB files (searched recursively; only read)")
    folder_options(p, opt)

    p, opt = op("split", datatools.split, "copy a folder into train/val(/test)",
                "Copy the images of SRC into OUT/train, OUT/val (and OUT/test with three ratios). The split "
                "depends only on the file names and --seed, so it is reproducible. A SRC holding A/ and B/ is "
                "split by pair (OUT/train/A, OUT/train/B, ...), or with --unpaired each of them on its own.",
                "  img2img data split data/silhouettes/train sil/ --ratios 0.8 0.1 0.1 --seed 1\n"
                "  img2img data split horse2zebra/ h2z/ --ratios 0.9 0.1 --unpaired   # then --unpaired h2z/train\n")
    src_out(p, "folder of images or pairs (only read)")
    opt("--ratios", dest="ratios", type=float, nargs="+", metavar="R",
        help="train val [test] weights, e.g. 0.8 0.2 or 8 1 1")
    opt("--seed", dest="seed", type=int, help="random seed of the assignment")
    opt("--unpaired", dest="unpaired", action="store_true",
        help="SRC holds unpaired A/ and B/ (or trainA/, trainB/): split each on its own (CycleGAN data)")
    folder_options(p, opt, ext=False)

    p, opt = op("download", datatools.download, "download a public pix2pix data set",
                "Download NAME into DIR (DIR/NAME), verify it, and extract it safely. An interrupted download "
                "is resumed by running the command again.\n\n"
                f"data sets ({downloads.BASE_URL}/NAME.tar.gz; sizes approximate):\n{downloads.table()}\n\n"
                "No checksums are recorded for these archives yet: the download's sha256 is printed; pass it "
                "as --sha256 to check a later download against it.",
                "  img2img data download facades datasets/\n"
                "  img2img train --pairs datasets/facades/train --direction BtoA --out runs/facades\n")
    p.add_argument("name", metavar="NAME", help=f"one of: {', '.join(downloads.DATASETS)}")
    p.add_argument("dir", metavar="DIR", help="folder to put the data set in")
    opt("--url", dest="url", help="download from this URL instead (a mirror, or your own tar archive)")
    opt("--sha256", dest="sha256", metavar="HEX", help="expected sha256 of the archive")
    opt("--keep-archive", dest="keep_archive", action="store_true", help="keep the .tar.gz after extracting")
    opt("--overwrite", dest="overwrite", action="store_true", help="replace DIR/NAME if it exists")
    opt("--retries", dest="retries", type=int, metavar="N", help="resume attempts after a broken connection")
    opt("--timeout", dest="timeout", type=float, metavar="S", help="network timeout in seconds")
    opt("--no-progress", dest="progress", action="store_false", help="no progress bar")


def cmd_data(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import datatools
    from .data.io import DataError

    op = args.data_op
    kw = {k: v for k, v in vars(args).items()
          if k not in ("func", "command", "data_op", "src", "out", "paths", "name", "dir")}
    if op == "download":
        r = datatools.download(args.name, args.dir, **kw)
        check = "verified" if r.verified else "no checksum known to verify against"
        print(printable(f"download: {r.name} is in {r.dir} (archive sha256 {r.sha256}: {check})"))
        return 0
    if op == "combine":
        if len(args.paths) == 2:
            src, out = map(Path, args.paths)
            a, b = src / "A", src / "B"
            if not (a.is_dir() and b.is_dir()):
                raise DataError(f"{src}: expected A/ and B/ sub-folders (or give A_DIR B_DIR OUT)")
        elif len(args.paths) == 3:
            a, b, out = args.paths
        else:
            raise _usage("combine takes DIR OUT or A_DIR B_DIR OUT")
        res = datatools.combine(a, b, out, **kw)
    else:
        fn = {"resize": datatools.resize, "grayscale": datatools.grayscale, "blank": datatools.blank,
              "edges": datatools.edges, "split-ab": datatools.split_ab, "split": datatools.split}[op]
        res = fn(args.src, args.out, **kw)
    for line in res.failed:
        print(printable(f"img2img data {op}: {line}"), file=sys.stderr)
    print(printable(res.summary()))
    return 0 if res.ok else 1


TRANSLATE_EPILOG = """\
examples:
  # every image under photos/ (recursively) -> out/ with the same relative names:
  img2img translate runs/sil photos/ out/
  # run at native resolution (padded to a multiple of 2^depth, cropped back), PNG outputs:
  img2img translate runs/sil/model.pt photos/ out/ --policy pad --format png --suffix _fake
  # the same through ONNX Runtime (a file from `img2img export`):
  img2img translate weights/sil.onnx photos/ out_onnx/

Outputs have their input's size. Existing outputs are kept unless --overwrite; OUTPUT may
not be INPUT or inside it. Unreadable files are reported (one line each) and counted; the
exit status is 1 if any image failed. BatchNorm uses each image's own statistics and
dropout is off, so results do not depend on --batch-size and are deterministic;
--dropout-noise turns on the paper's test-time dropout.
"""


def _add_translate_parser(sub) -> None:
    t = sub.add_parser("translate", formatter_class=_Formatter, epilog=TRANSLATE_EPILOG,
                       help="translate a folder of images (or one image) with a trained model",
                       description="Translate images with a trained pix2pix model (run folder, model.pt, "
                                   "latest.pt or .onnx).")
    t.add_argument("model", metavar="MODEL", help="run folder, model.pt / latest.pt, or a .onnx file")
    t.add_argument("input", metavar="INPUT", help="image folder (searched recursively) or one image")
    t.add_argument("output", metavar="OUTPUT", help="output folder (or a file name when INPUT is one image)")
    _add_inference_args(t)
    t.add_argument("--workers", type=int, metavar="N",
                   help="decoding processes, overlapped with the network (default: 0 on a CPU with <= 4 "
                        "cores, where they would only slow the network; else 2)")
    t.add_argument("--suffix", default="", help="appended to each output name's stem, e.g. _fake")
    t.add_argument("--format", default="same", choices=FORMATS,
                   help="output format (default: same as the input)")
    t.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    t.add_argument("--dropout-noise", action="store_true",
                   help="keep dropout on at test time, as the pix2pix paper does (outputs vary; torch models only)")
    t.add_argument("--seed", type=int, help="random seed for --dropout-noise")
    t.add_argument("--direction", choices=DIRECTIONS,
                   help="cyclegan: which generator, AtoB (default) or BtoA; a pix2pix model translates the way "
                        "it was trained")
    t.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    t.set_defaults(func=cmd_translate)


def _add_inference_args(p) -> None:
    p.add_argument("--policy", default="resize", choices=list(POLICY_ALIASES),
                   help="resize: to the model's size and back; pad (native): own resolution, padded to a "
                        "multiple of 2^depth and cropped back (default: resize)")
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="images per forward pass (default: 8)")
    p.add_argument("--device", default="auto", metavar="DEV", help="auto, cpu, cuda or cuda:N (default: auto)")


def cmd_translate(args: argparse.Namespace) -> int:
    from .pipeline import translate_folder
    summary = translate_folder(args.model, args.input, args.output, batch_size=args.batch_size,
                               device=args.device, policy=args.policy, workers=args.workers,
                               overwrite=args.overwrite, suffix=args.suffix, format=args.format,
                               dropout_noise=args.dropout_noise, seed=args.seed, progress=args.progress,
                               direction=args.direction)
    print(printable(str(summary)), file=sys.stderr)
    return 0 if summary.ok else 1


def _add_eval_parser(sub) -> None:
    e = sub.add_parser("eval", formatter_class=_Formatter,
                       help="score a model on held-out pairs (L1, PSNR, SSIM) with an HTML report",
                       description="Translate paired data and compare outputs with targets at the model's size: "
                                   "mean L1, PSNR and SSIM (kornia). Writes OUT/index.html (input | output | "
                                   "target per pair, with the figures) and OUT/results.json.",
                       epilog="example:\n  img2img eval runs/sil --pairs data/val --out runs/sil/eval\n")
    e.add_argument("model", metavar="MODEL", help="run folder, model.pt / latest.pt, or a .onnx file")
    e.add_argument("--pairs", required=True, metavar="DIR", help="folder of pairs (AB files, or A/ and B/)")
    e.add_argument("--out", required=True, metavar="DIR", help="report folder")
    e.add_argument("--direction", choices=DIRECTIONS,
                   help="which side of the pairs is the input (default: the model's); for cyclegan also which "
                        "generator runs")
    _add_inference_args(e)
    e.add_argument("--workers", type=int, metavar="N",
                   help="decoding processes (default: 0 on a CPU with <= 4 cores, else 2)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing report in --out")
    e.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    e.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate
    r = evaluate(args.model, args.pairs, args.out, direction=args.direction, device=args.device,
                 policy=args.policy, batch_size=args.batch_size, workers=args.workers,
                 overwrite=args.overwrite, progress=args.progress)
    print(printable(f"{r['count']} pair(s): mean L1 {r['l1']:.4f}, PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.4f}; "
                    f"report {args.out}/index.html" + (f"; {len(r['skipped'])} pair(s) skipped" if r["skipped"] else "")),
          file=sys.stderr)
    return 1 if r["skipped"] else 0


def _add_export_parser(sub) -> None:
    x = sub.add_parser("export", formatter_class=_Formatter,
                       help="export a generator to ONNX (RGB in/out, verified against torch)",
                       description="Export the generator of MODEL to a self-contained ONNX file: pix2pix and "
                                   "cyclegan (one direction) take and return (N, 3, H, W) RGB in [0, 1] of any H "
                                   "and W (color conversion and padding inside), dcgan/mlp take noise (N, z_dim). "
                                   "The file is checked with onnxruntime against torch (max abs diff <= 1e-4) "
                                   "before it is written. --quantize int8 writes an int8 model instead, checked "
                                   "against the float one on calibration images.",
                       epilog="examples:\n  img2img export runs/sil weights/sil.onnx\n"
                              "  img2img translate weights/sil.onnx photos/ out/\n"
                              "  img2img export runs/sil weights/sil.int8.onnx --quantize int8 --calibration photos/\n")
    x.add_argument("model", metavar="MODEL", help="run folder, model.pt or latest.pt")
    x.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    x.add_argument("--opset", type=int, default=DEFAULT_OPSET, metavar="N", help=f"ONNX opset (default: {DEFAULT_OPSET})")
    x.add_argument("--exporter", default=EXPORTERS[0], choices=EXPORTERS,
                   help="torch.export-based (default) or the legacy tracer (faster, deprecated)")
    x.add_argument("--direction", choices=DIRECTIONS,
                   help="cyclegan: which generator to export, AtoB (default) or BtoA")
    x.add_argument("--overwrite", action="store_true", help="replace an existing OUT.onnx")
    q = x.add_argument_group("int8 (image-to-image models, ONNX Runtime static quantization)")
    q.add_argument("--quantize", choices=["int8"], help="write an int8 model to OUT.onnx instead of the float one")
    q.add_argument("--calibration", metavar="DIR", help="images the model will be given, for the int8 ranges and "
                                                        "the accuracy check (default: the run's training data: the images "
                                                        "that feed the exported direction)")
    q.add_argument("--calibration-images", type=int, default=32, metavar="N",
                   help="at most N calibration images (default: 32)")
    q.add_argument("--min-psnr", type=float, default=35.0, metavar="DB",
                   help="refuse to write the int8 model if its output differs from the float model's by "
                        "less than DB dB PSNR on the calibration images (default: 35)")
    x.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from .export import ExportError, export_onnx
    from .quantize import QuantizeError, export_int8
    options = dict(opset=args.opset, exporter=args.exporter, direction=args.direction)
    try:
        if args.quantize:
            exported, quantized = export_int8(args.model, args.out, images=args.calibration,
                                              n_images=args.calibration_images, threshold=args.min_psnr,
                                              overwrite=args.overwrite, **options)
        else:
            exported, quantized = export_onnx(args.model, args.out, overwrite=args.overwrite, **options), None
    except (ExportError, QuantizeError) as e:
        print(printable(f"img2img export: error: {e}"), file=sys.stderr)
        return 1
    for note in exported.notes:
        print(printable(f"note: {note}"), file=sys.stderr)
    text = str(exported)
    if quantized is not None:
        text = text.replace(f"wrote {exported.path}", "float model exported")
    print(printable(text), file=sys.stderr)
    if quantized is not None:
        print(printable(str(quantized)), file=sys.stderr)
    return 0


SERVE_EPILOG = """\
examples:
  # a pix2pix model (run folder, model.pt or .onnx): draw or upload, see the translation
  img2img serve runs/demo                      # then open http://127.0.0.1:7860/
  img2img serve weights/sil.onnx --port 8080
  # a dcgan/mlp model: a grid of samples for a seed, and a walk between two seeds
  img2img serve runs/dcgan

Needs Gradio: pip install 'img2img[serve]'. The model is loaded once, at start-up;
requests run one at a time. Serves on 127.0.0.1 (this computer only) unless --host is
given. Uploads over --max-upload-mb are refused by the server; uploads that do not
decode or have more than --max-pixels pixels get a message on the page. Ctrl-C stops.
"""


def _add_serve_parser(sub) -> None:
    s = sub.add_parser("serve", formatter_class=_Formatter, epilog=SERVE_EPILOG, help=HELP["serve"],
                       description="Serve a web page for MODEL: pix2pix/cyclegan models get a drawing canvas and an "
                                   "upload box with the output beside them; dcgan/mlp models a grid of samples "
                                   "with a seed control and an interpolation between two seeds.")
    s.add_argument("model", metavar="MODEL", help="run folder, model.pt / latest.pt, or a .onnx file (pix2pix)")
    s.add_argument("--host", default=argparse.SUPPRESS,
                   help="address to listen on (default: 127.0.0.1; 0.0.0.0 opens it to your network)")
    s.add_argument("--port", type=int, default=argparse.SUPPRESS, help="port (default: 7860; 0: any free port)")
    s.add_argument("--device", default=argparse.SUPPRESS, metavar="DEV", help="auto, cpu, cuda or cuda:N "
                                                                              "(default: auto)")
    s.add_argument("--policy", default=argparse.SUPPRESS, choices=list(POLICY_ALIASES),
                   help="resize: to the model's size and back; pad (native): own resolution (default: resize)")
    s.add_argument("--direction", default=argparse.SUPPRESS, choices=DIRECTIONS,
                   help="offer only this direction (default: every direction the model translates: both for "
                        "cyclegan, the training direction for pix2pix)")
    s.add_argument("--max-upload-mb", type=float, default=argparse.SUPPRESS, metavar="MB",
                   help="largest upload accepted (default: 20)")
    s.add_argument("--max-pixels", type=int, default=argparse.SUPPRESS, metavar="N",
                   help="largest image accepted, in pixels (default: 40000000)")
    s.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve
    serve(args.model, block=True, **{k: v for k, v in vars(args).items() if k not in ("func", "command", "model")})
    return 0


class _UsageError(Exception):
    pass


def _usage(msg: str) -> _UsageError:
    return _UsageError(msg)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else "")
    args = parser.parse_args(argv)             # --version and --help end here (train's --help imports torch)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data.io import DataError, DataWarning
    from .gan.trainer import TrainingError

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DataWarning):          # one line, like the errors
            print(printable(f"img2img {args.command}: warning: {message}"), file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", DataWarning)
            shown, warnings.showwarning = warnings.showwarning, show
            return args.func(args)
    except (ConfigError, DataError, CheckpointError, _UsageError) as e:
        print(printable(f"img2img {args.command}: error: {e}"), file=sys.stderr)
        return 2
    except TrainingError as e:
        print(printable(f"img2img {args.command}: error: {e}"), file=sys.stderr)
        return 1
    except OSError as e:        # the environment, not the input: a full disk, a read-only or vanished folder
        where = f"{e.filename}: " if e.filename else ""
        print(printable(f"img2img {args.command}: error: {where}{e.strerror or e}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"img2img {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
