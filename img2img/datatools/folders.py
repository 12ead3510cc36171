"""Folder operations behind ``img2img data``: resize, grayscale, blank, edges, combine, split-ab, split.

Shared rules, enforced once in :func:`_plan` and :func:`_run`:

* the input folder is only read: an output folder equal to or inside an
  input folder is refused, and so is any output file that would land in one;
* existing outputs are never replaced unless ``overwrite=True``; two inputs
  that would write the same output are refused before anything is written;
* every output file is written atomically (a temporary file renamed into
  place), so an interrupted run leaves whole files only;
* work is spread over ``workers`` processes (torch limited to one thread in
  each) with a tqdm bar; a file that cannot be read or written is reported
  in :attr:`Result.failed` (one line naming it) and the others go on.

Pairs made by ``grayscale``, ``blank`` and ``edges`` put the derived image in
A and the original in B (``layout="ab"``: one A|B file each, the pix2pix
format; ``layout="folders"``: OUT/A/ and OUT/B/), so the default training
direction AtoB learns derived -> photo, like edges2shoes.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import random
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from ..config import MAX_SEED, MAX_WORKERS, ConfigError, check_int, check_number
from ..data.io import DataError, list_images, load_image
from ..files import IMAGE_FORMATS, atomic_path, check_output, save_image
from . import ops

LAYOUTS = ("ab", "folders", "single")
MAX_SIDE = 16384                 # output side of resize: the largest image img2img reads (data.io.MAX_PIXELS)
SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Result:
    """What a folder operation did.  ``failed`` holds one line per input that could not be processed."""
    operation: str
    out: Path
    total: int = 0                                  # inputs (files or pairs) attempted
    done: int = 0                                   # inputs written
    failed: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)   # split: inputs per part
    succeeded: list[bool] = field(default_factory=list, repr=False)   # per planned task, in order

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        parts = f" ({', '.join(f'{k}: {v}' for k, v in self.counts.items())})" if self.counts else ""
        s = f"{self.operation}: {self.done} of {self.total} done{parts}, written to {self.out}"
        if self.failed:
            s += f"; {len(self.failed)} failed (listed above)"
        return s


@dataclass(frozen=True)
class _Task:
    srcs: tuple[Path, ...]
    dsts: tuple[Path, ...]


# --------------------------------------------------------------------------- public operations

def resize(src, out, size: int = 256, *, mode: str = "crop", resample: str = "lanczos", ab: bool = False,
           ext: str | None = None, quality: int = 95, workers: int | None = None, overwrite: bool = False,
           progress: bool = True) -> Result:
    """Resize every image under ``src`` to ``size`` x ``size`` into ``out`` (same relative names).

    ``mode``: "crop" (shorter side to ``size``, centre crop) or "pad" (longer
    side to ``size``, white padding).  ``ab=True`` treats each file as an A|B
    pair and resizes both halves, giving ``2*size`` x ``size`` files.
    ``resample``: lanczos, bicubic, bilinear or nearest (use nearest for label maps).
    """
    check_int("size", size, 1, MAX_SIDE // 2 if ab else MAX_SIDE,
              " pixels" + (" (--ab files are twice as wide)" if ab else ""))
    _choice("mode", mode, ("crop", "pad"))
    _choice("resample", resample, tuple(ops.RESAMPLE))
    root, files = _inputs(src)
    ext = _ext(ext)
    tasks = [_Task((f,), (_dst(out, f.relative_to(root), ext),)) for f in files]
    params = dict(size=size, mode=mode, resample=resample, ab=ab, quality=quality)
    return _execute("resize", [root], out, tasks, "resize", params, workers, overwrite, progress)


def grayscale(src, out, *, layout: str = "single", ext: str | None = None, quality: int = 95,
              workers: int | None = None, overwrite: bool = False, progress: bool = True) -> Result:
    """Gray versions of every image (ITU-R 601-2 luma).  ``layout``: single (gray files only),
    ab (gray|color pair files, for colorization) or folders (OUT/A gray, OUT/B color)."""
    return _derive("grayscale", src, out, {}, layout, ext, quality, workers, overwrite, progress)


def blank(src, out, *, fraction: float = 0.5, layout: str = "ab", ext: str | None = None, quality: int = 95,
          workers: int | None = None, overwrite: bool = False, progress: bool = True) -> Result:
    """Inpainting pairs: A is the image with a centred white rectangle (``fraction`` of each side), B the image."""
    check_number("fraction", fraction, 0.0, 1.0, low_open=True)
    return _derive("blank", src, out, {"fraction": fraction}, layout, ext, quality, workers, overwrite, progress)


def edges(src, out, *, low: float = 0.2, high: float = 0.5, sigma: float = 1.5, thickness: int = 1,
          layout: str = "ab", ext: str | None = None, quality: int = 95, workers: int | None = None,
          overwrite: bool = False, progress: bool = True) -> Result:
    """Edges -> photo pairs like edges2shoes: A is the Canny edge map (kornia; black lines on white), B the photo.

    ``low``/``high``: hysteresis thresholds (see :func:`img2img.datatools.ops.edges`);
    ``sigma``: blur before the gradient; ``thickness``: line width in pixels.
    """
    problem = ops.edge_params_problem(low, high, sigma, thickness)
    if problem:
        raise ConfigError(problem)
    params = {"low": low, "high": high, "sigma": sigma, "thickness": thickness}
    return _derive("edges", src, out, params, layout, ext, quality, workers, overwrite, progress)


def combine(a_dir, b_dir, out, *, ext: str | None = None, quality: int = 95, workers: int | None = None,
            overwrite: bool = False, progress: bool = True) -> Result:
    """A/ and B/ folders -> AB files (A left, B right) named like the A files.

    Files pair up by relative path without extension (``A/x.jpg`` with
    ``B/x.png``); a file without a partner, or a pair of different sizes, is
    reported in ``failed`` and the other pairs are still written.
    """
    a_dir, b_dir = Path(a_dir), Path(b_dir)
    for d in (a_dir, b_dir):
        if not d.is_dir():
            raise DataError(f"{d}: no such directory")
    pairs, problems = _match(a_dir, b_dir)
    ext = _ext(ext)
    tasks = [_Task((a, b), (_dst(out, a.relative_to(a_dir), ext),)) for _, a, b in pairs]
    return _execute("combine", [a_dir, b_dir], out, tasks, "combine", {"quality": quality}, workers, overwrite,
                    progress, problems=problems)


def split_ab(src, out, *, ext: str | None = None, quality: int = 95, workers: int | None = None,
             overwrite: bool = False, progress: bool = True) -> Result:
    """AB files -> OUT/A/ (left halves) and OUT/B/ (right halves), same relative names."""
    root, files = _inputs(src)
    ext = _ext(ext)
    tasks = [_Task((f,), (_dst(out, f.relative_to(root), ext, "A"), _dst(out, f.relative_to(root), ext, "B")))
             for f in files]
    return _execute("split-ab", [root], out, tasks, "split_ab", {"quality": quality}, workers, overwrite, progress)


def split(src, out, ratios: Sequence[float] = (0.8, 0.2), *, seed: int = 0, unpaired: bool = False,
          workers: int | None = None, overwrite: bool = False, progress: bool = True) -> Result:
    """Copy the images under ``src`` into OUT/train, OUT/val (and OUT/test with three ratios).

    ``ratios`` are relative weights (0.8 0.2, or 8 1 1).  The assignment
    depends only on the sorted relative names and ``seed``: the same folder
    and seed always give the same split.  Counts are rounded to whole files
    (largest remainder) and every part with a non-zero ratio gets at least
    one file when there are enough.  A folder holding A/ and B/ is split by
    pair, so both halves of a pair land in the same part; with ``unpaired``
    (CycleGAN data, names need not match) each of A/ and B/ (or trainA/ and
    trainB/) is split on its own, into OUT/train/A, OUT/train/B, OUT/val/A ...
    Files are copied byte for byte after checking that they decode.
    """
    ratios = [float(r) for r in ratios]
    if not 2 <= len(ratios) <= 3 or any(not 0 <= r <= 1e6 for r in ratios) or sum(ratios) <= 0:
        raise ConfigError(f"ratios must be 2 or 3 non-negative numbers (train val [test]), got {ratios}")
    check_int("seed", seed, 0, MAX_SEED)
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"{src}: no such directory" if not src.exists() else f"{src}: not a directory")
    names = SPLIT_NAMES[:len(ratios)]
    problems: list[str] = []
    if unpaired:
        from ..data.unpaired import find_domains
        groups = []
        for side, root in zip(("A", "B"), find_domains(src)):
            _, files = _inputs(root)
            groups.append([(str(f.relative_to(root)), (f,), (Path(side) / f.relative_to(root),)) for f in files])
    elif (src / "A").is_dir() and (src / "B").is_dir():
        roots = [src / "A", src / "B"]
        pairs, problems = _match(*roots)
        groups = [[(key, (a, b), (Path("A") / a.relative_to(roots[0]), Path("B") / b.relative_to(roots[1])))
                   for key, a, b in pairs]]
    else:
        root, files = _inputs(src)
        groups = [[(str(f.relative_to(root)), (f,), (f.relative_to(root),)) for f in files]]
    tasks, part_of = [], []
    for units in groups:                                   # one group, or A and B on their own (unpaired)
        units.sort(key=lambda u: u[0])
        counts = _split_counts(len(units), ratios)
        order = list(range(len(units)))
        random.Random(seed).shuffle(order)
        start = 0
        for name, n in zip(names, counts):
            for i in sorted(order[start:start + n]):
                _, srcs, rels = units[i]
                tasks.append(_Task(srcs, tuple(out / name / r for r in rels)))
                part_of.append(name)
            start += n
    res = _execute("split", [src], out, tasks, "copy", {}, workers, overwrite, progress, problems=problems)
    res.counts = {name: 0 for name in names}
    for name, ok in zip(part_of, res.succeeded):
        res.counts[name] += ok
    return res


# --------------------------------------------------------------------------- planning

def _split_counts(n: int, ratios: list[float]) -> list[int]:
    total = sum(ratios)
    exact = [n * r / total for r in ratios]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(ratios)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    for i, r in enumerate(ratios):          # a part that was asked for gets at least one file
        if r > 0 and counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: counts[j])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] += 1
    return counts


def _derive(transform, src, out, params, layout, ext, quality, workers, overwrite, progress) -> Result:
    _choice("layout", layout, LAYOUTS)
    root, files = _inputs(src)
    ext = _ext(ext)
    tasks = []
    for f in files:
        rel = f.relative_to(root)
        dsts = (_dst(out, rel, ext, "A"), _dst(out, rel, ext, "B")) if layout == "folders" else \
            (_dst(out, rel, ext),)
        tasks.append(_Task((f,), dsts))
    params = dict(params, layout=layout, quality=quality)
    return _execute(transform, [root], out, tasks, transform, params, workers, overwrite, progress)


def _inputs(src) -> tuple[Path, list[Path]]:
    src = Path(src)
    files = list_images(src)
    if not files:
        raise DataError(f"{src}: no image files found (looked for jpg/png/bmp/webp/tiff, recursively)")
    return (src if src.is_dir() else src.parent), files


def _match(a_dir: Path, b_dir: Path) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Pair files of two folders by relative path without extension; report the rest."""
    problems: list[str] = []

    def index(d: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for f in list_images(d):
            key = str(f.relative_to(d).with_suffix(""))
            if key in out:
                problems.append(f"{f}: same name as {out[key]} apart from the extension; cannot tell which to pair")
                continue
            out[key] = f
        return out

    a, b = index(a_dir), index(b_dir)
    pairs = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            problems.append(f"{a[key]}: no file of the same name in {b_dir}")
        elif key not in a:
            problems.append(f"{b[key]}: no file of the same name in {a_dir}")
        else:
            pairs.append((key, a[key], b[key]))
    if not pairs:
        raise DataError(f"{a_dir} and {b_dir}: no file names in common"
                        + (f" ({len(problems)} unmatched)" if problems else " (both folders hold no images)"))
    return pairs, problems


def _ext(ext: str | None) -> str | None:
    if ext is None:
        return None
    e = ext.lower() if ext.startswith(".") else "." + ext.lower()
    if e not in IMAGE_FORMATS:
        raise ConfigError(f"unknown image extension {ext!r} (one of {', '.join(IMAGE_FORMATS)})")
    return e


def _dst(out, rel: Path, ext: str | None, sub: str | None = None) -> Path:
    p = Path(out) / sub / rel if sub else Path(out) / rel
    return p.with_suffix(ext) if ext else p


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")


def _plan(roots: list[Path], out: Path, tasks: list[_Task], overwrite: bool) -> None:
    """Refuse outputs in an input folder, colliding outputs, and (unless ``overwrite``) existing outputs."""
    out = Path(out)
    out_r = out.resolve()
    inside: list[tuple[Path, tuple[str, ...]]] = []
    for r in roots:
        rr = Path(r).resolve()
        if out_r == rr or rr in out_r.parents:
            where = "is the input folder" if out_r == rr else f"is inside the input folder {r}"
            raise DataError(f"{out}: the output folder {where}; choose one outside it (inputs are never modified)")
        if out_r in rr.parents:                      # an input folder inside the output folder
            inside.append((Path(r), rr.relative_to(out_r).parts))
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory")
    seen: dict[Path, Path] = {}
    existing: list[Path] = []
    for t in tasks:
        for d in t.dsts:
            rel = d.relative_to(out).parts
            for r, parts in inside:
                if rel[:len(parts)] == parts:
                    raise DataError(f"{d}: would be written inside the input folder {r}; choose another output folder")
            problem = check_output(d, out, roots)       # symbolic links resolved: OUT/sub -> SRC/sub
            if problem:
                raise DataError(f"{problem}; nothing was written")
            key = Path(os.path.normcase(d))
            if key in seen:
                raise DataError(f"{t.srcs[0]} and {seen[key]} would both be written to {d} "
                                "(same name, different extensions); rename one or pass --ext")
            seen[key] = t.srcs[0]
            if d.exists() or d.is_symlink():
                existing.append(d)
    if existing and not overwrite:
        more = f" ({len(existing)} of the outputs exist)" if len(existing) > 1 else ""
        raise DataError(f"{existing[0]}: already exists{more}; pass --overwrite (overwrite=True) to replace")


# --------------------------------------------------------------------------- running

def default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def _execute(op, roots, out, tasks, transform, params, workers, overwrite, progress, problems=()) -> Result:
    out = Path(out)
    workers = default_workers() if workers is None else check_int("workers", workers, 0, MAX_WORKERS)
    if "quality" in params:
        check_int("quality", params["quality"], 1, 100, " (JPEG/WebP)")
    _plan(roots, out, tasks, overwrite)
    params = dict(params, guard=(str(out), tuple(str(r) for r in roots)))    # checked again at each write
    res = Result(op, out, total=len(tasks) + len(problems), failed=list(problems))
    fn = partial(_work, transform, params)
    errors = _run(op, fn, tasks, workers, progress)
    res.succeeded = [e is None for e in errors]
    res.done = sum(res.succeeded)
    res.failed += [e for e in errors if e is not None]
    return res


def _run(op: str, fn: Callable[[_Task], str | None], tasks: list[_Task], workers: int,
         progress: bool) -> list[str | None]:
    results: list[str | None] = []
    bar = tqdm(total=len(tasks), desc=op, unit="file", disable=not progress, dynamic_ncols=True)
    try:
        workers = min(max(1, int(workers)), len(tasks))
        if workers <= 1:
            for t in tasks:
                results.append(fn(t))
                bar.update()
            return results
        ex = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_init_worker)
        try:
            chunk = max(1, min(16, len(tasks) // (workers * 8)))
            for r in ex.map(fn, tasks, chunksize=chunk):
                results.append(r)
                bar.update()
        except BaseException:
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        ex.shutdown()
        return results
    finally:
        bar.close()


def _context():
    # Linux: fork, so workers start at once with everything imported (as torch's DataLoader does; each
    # worker then limits torch to one thread).  Elsewhere fork is unsafe or missing: spawn.
    if sys.platform.startswith("linux"):
        return mp.get_context("fork")
    return mp.get_context("spawn")


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the parent's to handle
    import torch
    torch.set_num_threads(1)                         # one thread per process: workers are the parallelism


# --------------------------------------------------------------------------- the work for one input

def _work(transform: str, params: dict, task: _Task) -> str | None:
    """Process one input; return None, or a one-line message naming the file that failed."""
    try:
        if transform == "copy":
            data = []
            for s in task.srcs:
                load_image(s)                        # decodes: a truncated file is reported, not copied
                data.append(s.read_bytes())
            for d, b in zip(task.dsts, data):
                problem = _guard(params, d)
                if problem:
                    return problem
                try:
                    with atomic_path(d) as tmp:
                        tmp.write_bytes(b)
                except OSError as e:
                    return f"{d}: cannot write ({e.strerror or e})"
            return None
        imgs = [load_image(s, 3) for s in task.srcs]
    except DataError as e:
        return str(e)
    except OSError as e:
        return f"{task.srcs[0]}: cannot read ({e.strerror or e})"
    try:
        outs = _compute(transform, params, imgs, task.srcs)
    except DataError as e:
        return str(e)
    except (ValueError, RuntimeError, MemoryError) as e:     # one odd image must not end a long batch
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        return f"{task.srcs[0]}: cannot process image of {imgs[0].shape[1]}x{imgs[0].shape[0]} ({first})"
    for arr, d in zip(outs, task.dsts):
        problem = _guard(params, d)
        if problem:
            return problem
        try:
            _save(arr, d, params.get("quality", 95))
        except OSError as e:
            return f"{d}: cannot write ({e.strerror or e})"
    return None


def _guard(params: dict, dst: Path) -> str | None:
    """Why ``dst`` may not be written now (a symbolic link into an input appeared since the plan), or None."""
    if "guard" not in params:
        return None
    out, roots = params["guard"]
    return check_output(dst, out, roots)


def _compute(transform: str, p: dict, imgs: list[np.ndarray], srcs: tuple[Path, ...]) -> list[np.ndarray]:
    img = imgs[0]
    if transform == "split_ab" or (transform == "resize" and p["ab"]):
        if img.shape[1] % 2:
            raise DataError(f"{srcs[0]}: AB image width {img.shape[1]} is odd, so it is not an A|B pair "
                            "(expected A on the left half and B on the right, equal widths)")
        a, b = ops.split_halves(img)
        if transform == "split_ab":
            return [a, b]
        r = partial(ops.resize_square, size=p["size"], mode=p["mode"], resample=p["resample"])
        return [ops.side_by_side(r(a), r(b))]
    if transform == "resize":
        return [ops.resize_square(img, p["size"], p["mode"], p["resample"])]
    if transform == "combine":
        a, b = imgs
        if a.shape != b.shape:
            raise DataError(f"{srcs[1]}: size {b.shape[1]}x{b.shape[0]} differs from its A image {srcs[0]} "
                            f"({a.shape[1]}x{a.shape[0]}); resize one side first")
        return [ops.side_by_side(a, b)]
    if transform == "grayscale":
        derived = ops.grayscale(img)
    elif transform == "blank":
        derived = ops.blank(img, p["fraction"])
    elif transform == "edges":
        derived = ops.edges(img, p["low"], p["high"], p["sigma"], p["thickness"])
    else:  # pragma: no cover - programming error
        raise ValueError(transform)
    layout = p["layout"]
    if layout == "ab":
        return [ops.side_by_side(derived, img)]
    if layout == "folders":
        return [derived, img]
    return [derived]


def _save(arr: np.ndarray, path: Path, quality: int = 95) -> None:
    save_image(ops._squeeze(arr), path, quality=quality, compress_level=9)    # data sets: written once, read often


__all__ = ["Result", "blank", "combine", "default_workers", "edges", "grayscale", "resize", "split", "split_ab"]
