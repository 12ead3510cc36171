"""Translating folders: the pipeline under ``img2img translate`` (and the reader ``eval`` uses).

Files are decoded (and prepared for the network) by a :class:`SafeItems`
dataset in ``workers`` DataLoader processes, run through a
:class:`~img2img.translate.Translator` in batches of equal-shaped inputs, and
written by a small thread pool, overlapped with the network.  A file that
cannot be read or written costs one line in the summary, never the run.
"""
from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .color import to_float, to_uint8
from .config import FORMATS, ConfigError
from .data.io import IMAGE_EXTENSIONS, DataError, is_image, list_images, load_image
from .data.loader import SafeItems, make_loader
from .files import check_output, first_line, printable, save_image
from .translate import Translator, check_inference_options, shape_batches

WRITE_THREADS = 2


def _read_image(files: list[Path], prepare, keep_original: bool, i: int) -> dict:
    """Decode file ``i`` and prepare it for the network (+ the 8-bit original when asked)."""
    arr = load_image(files[i], 3)
    rgb = to_float(arr)
    item = {"input": prepare(rgb), "size": tuple(rgb.shape[-2:])}
    if keep_original:
        item["original"] = torch.from_numpy(np.require(arr, requirements=["C", "W"]))
    return item


@dataclass
class TranslateSummary:
    """What :func:`translate_folder` did."""
    output: Path
    translated: list[Path] = field(default_factory=list)     # files written
    skipped: list[Path] = field(default_factory=list)        # outputs that existed (no --overwrite)
    failed: list[str] = field(default_factory=list)          # one-line messages

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        parts = [f"{len(self.translated)} image(s) translated into {self.output}"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (output exists; --overwrite replaces it)")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return "; ".join(parts)


def output_path(rel: Path, out_root: Path, suffix: str = "", fmt: str = "same") -> Path:
    """Where the translation of ``INPUT/rel`` goes: same relative path, optional suffix and format."""
    ext = rel.suffix if fmt == "same" else "." + fmt
    return out_root / rel.parent / f"{rel.stem}{suffix}{ext}"


def check_suffix(suffix: str) -> str:
    """``--suffix`` is appended to a file name: no path separators (it must not move the output), no
    control characters."""
    if not isinstance(suffix, str):
        raise ConfigError(f"suffix must be text, got {suffix!r}")
    bad = [c for c in suffix if c in ("/", "\\", os.sep, os.altsep or "/") or not c.isprintable()]
    if bad:
        raise ConfigError(f"--suffix {printable(suffix)!r}: may not contain {printable(bad[0])!r} (path separators "
                          "and control characters would move the output elsewhere); use e.g. _fake")
    return suffix


def plan_outputs(input: Path, output: Path, suffix: str, fmt: str) -> tuple[list[Path], list[Path], Path]:
    """(input files, their output paths, the output folder).

    Refuses (ConfigError, nothing written) an output folder equal to or inside the input folder,
    and any output that, with symbolic links resolved, would land in the input or outside the
    output folder (e.g. OUTPUT/sub linking to INPUT/sub)."""
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    check_suffix(suffix)
    if not input.exists():
        raise DataError(f"{input}: no such file or directory")
    src = input.resolve()
    if input.is_file():
        files = list_images(input)                      # raises if not an image file
        dest = output / output_path(Path(input.name), Path(), suffix, fmt) if not is_image(output) else output
        if dest.resolve() == src:
            raise ConfigError(f"{dest}: the output would replace the input image; choose another OUTPUT")
        _refuse_outputs([dest], dest.parent, input)
        return files, [dest], dest.parent
    dst = output.resolve()
    if dst == src or src in dst.parents:
        raise ConfigError(f"{output}: the output folder is {'the input folder' if dst == src else 'inside the input folder'} "
                          f"{input}; choose an OUTPUT outside it (translate never writes into its input)")
    if output.exists() and not output.is_dir():
        raise ConfigError(f"{output}: exists and is not a folder (INPUT is a folder, so OUTPUT must be one)")
    files = list_images(input)
    if not files:
        raise DataError(f"{input}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)")
    outs = [output_path(f.relative_to(input), output, suffix, fmt) for f in files]
    _refuse_outputs(outs, output, input)
    return files, outs, output


def _refuse_outputs(outs: list[Path], root: Path, input: Path) -> None:
    problems = [p for p in (check_output(o, root, [input]) for o in outs) if p]
    if problems:
        more = f" ({len(problems)} outputs like it)" if len(problems) > 1 else ""
        raise ConfigError(f"{problems[0]}{more}; nothing was written")


def translate_folder(model: str | Path | Translator, input: str | Path, output: str | Path, *,
                     batch_size: int = 8, device: str = "auto", policy: str = "resize", workers: int | None = None,
                     overwrite: bool = False, suffix: str = "", format: str = "same",
                     dropout_noise: bool = False, seed: int | None = None, progress: bool = True,
                     verbose: bool = True, log=None, direction: str | None = None) -> TranslateSummary:
    """Translate every image under ``input`` (recursive) or the single image ``input`` into ``output``.

    Outputs keep their relative path and name (plus ``suffix``; extension from
    ``format``, ``"same"`` keeps the input's).  Existing outputs are left alone
    unless ``overwrite``; unreadable files are reported in one line each and
    counted in ``summary.failed``.  Decoding runs in ``workers`` DataLoader
    processes (None: :func:`default_workers`) and encoding in a thread pool,
    overlapped with the network.
    ``model`` may be a loaded :class:`Translator` (then its device, policy, batch
    size and direction are used); ``direction`` picks a CycleGAN model's generator.
    ``verbose`` logs the model description first.
    """
    from tqdm import tqdm
    input, output = Path(input), Path(output)
    check_inference_options(policy=policy, batch_size=batch_size, workers=workers, seed=seed)
    files, outs, out_root = plan_outputs(input, output, suffix, format)
    log = log or (lambda msg: tqdm.write(printable(msg), file=sys.stderr))
    tr = model if isinstance(model, Translator) else Translator.load(
        model, device=device, policy=policy, batch_size=batch_size, dropout_noise=dropout_noise, seed=seed,
        direction=direction)
    if verbose:
        log(tr.describe())
    summary = TranslateSummary(out_root)
    todo: list[int] = []
    claimed: dict[Path, Path] = {}
    for i, (f, o) in enumerate(zip(files, outs)):
        key = o.resolve()
        if key in claimed:
            summary.failed.append(f"{f}: its output {o} would also be written by {claimed[key]}; skipped "
                                  "(use --suffix or --format same to keep names apart)")
            log(f"warning: {summary.failed[-1]}")
            continue
        claimed[key] = f
        if o.exists() and not overwrite:
            summary.skipped.append(o)
        else:
            todo.append(i)
    if summary.skipped:
        log(f"{len(summary.skipped)} output(s) already exist and are kept (--overwrite replaces them)")
    if not todo:
        return summary

    todo_files = [files[i] for i in todo]
    dataset = SafeItems(partial(_read_image, todo_files, tr.preparer, tr.needs_original()), map(str, todo_files))
    loader = make_loader(dataset, tr.batch_size, workers, tr.device)
    lock = threading.Lock()
    bar = tqdm(total=len(todo), desc="translate", unit="img", disable=not progress, dynamic_ncols=True,
               file=sys.stderr)

    def write(k: int, out: torch.Tensor, size, original) -> None:
        src, dest = files[todo[k]], outs[todo[k]]
        try:
            orig = to_float(original.numpy()) if original is not None else None
            arr = to_uint8(tr.finish(out, size, orig))
            problem = check_output(dest, out_root, [input])    # a link may have appeared while we worked
            if problem:
                raise OSError(problem)
            if dest.exists() and not overwrite:          # appeared while we worked: keep it
                with lock:
                    summary.skipped.append(dest)
            else:
                save_image(arr, dest)
                with lock:
                    summary.translated.append(dest)
        except Exception as e:  # noqa: BLE001 - a write failure is one line and a count, not a traceback
            with lock:
                summary.failed.append(f"{dest}: cannot write ({first_line(e)}) for {src}")
                log(f"error: {summary.failed[-1]}")
        finally:
            bar.update()

    pending: list[Future] = []
    with ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="img2img-write") as pool:
        try:
            for items in loader:
                good = []
                for it in items:
                    if "error" in it:
                        with lock:
                            summary.failed.append(f"{it['error']}; skipped")
                            log(f"warning: {summary.failed[-1]}")
                        bar.update()
                    else:
                        good.append(it)
                for idx, batch in shape_batches([it["input"] for it in good], tr.batch_size):
                    y = tr.run(batch)
                    for j, i in enumerate(idx):
                        it = good[i]
                        pending.append(pool.submit(write, it["index"], y[j], it["size"], it.get("original")))
                while len(pending) > 4 * tr.batch_size:          # bound memory held by unwritten outputs
                    pending.pop(0).result()
            for f in pending:
                f.result()
        finally:
            bar.close()
    summary.translated.sort()
    return summary
