"""img2img beside the reference pix2pix code, timed as whole processes in one run.

    python tools/bench_reference.py REF_DIR [--steps 5 25] [--images 5 55] [--rounds 2]
                                            [--pairs DIR] [--model RUN | --model-steps K] [--json FILE]

(``tools/bench.py --reference REF_DIR`` runs this after its own rows.)
``REF_DIR`` is a checkout of the widely used PyTorch implementation
(junyanz/pytorch-CycleGAN-and-pix2pix, or a fork carrying its unchanged
``train.py``, ``test.py``, ``models/``, ``data/``, ``options/``, ``util/``);
nothing of it is copied here: its scripts are run as they are, as
subprocesses, with this Python.

Its requirements.txt names dominate, visdom and wandb beside torch.  With
the options below only ``dominate`` is imported (``util/html.py``, for the
result page of test.py); visdom only with ``--display_id`` > 0 and wandb
only with ``--use_wandb`` (its import is guarded).  When ``dominate`` is not
installed, a stand-in module that accepts its calls and renders an empty page
is written into the temporary work folder and put on the reference's
PYTHONPATH only (never into the reference or the environment); the table then
says so, since test.py writes an empty index.html instead of its page.

What is timed, each as a fresh process, interleaved (reference, then ours,
for N and then M, ``--rounds`` times) so that load changes hit both alike:

* training: the reference ``train.py --model pix2pix`` (U-Net 256 + PatchGAN,
  batch 1, resize 286 and random 256 crop with flips, vanilla GAN + 100 L1,
  Adam 2e-4 -- its defaults) on CPU for exactly K iterations
  (``--max_dataset_size K``, one epoch), against
  ``img2img train --pairs ... --max-steps K`` with its defaults (the same
  networks, data augmentation and losses);
* translation of K 256x256 PNGs: the reference ``test.py --model test``
  (its one-direction test path: U-Net 256, batch 1, writes the input and the
  output image and an HTML page) against ``img2img translate`` with the
  PyTorch model, the float ONNX file and the int8 ONNX file, batch 1 and 8.

Per step / per image = (wall(M) - wall(N)) / (M - N), so process start-up,
model building and loading cancel; the table also gives what is left over
(the fixed cost, wall(N) - N x per-step).  Settings that differ from the
reference's defaults, and why: ``--gpu_ids -1`` (CPU), ``--display_id 0``
and ``--no_html`` (no visdom server, no result pages during training),
``--n_epochs 1 --n_epochs_decay 0 --max_dataset_size K`` (exactly K steps),
``--lr_policy step`` (with one epoch, its default linear policy sets the
learning rate to 0 before the first step -- same amount of work, but not a
real run).  Everything both programs write goes to a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REQUIRED = ("train.py", "test.py", "models/pix2pix_model.py", "models/test_model.py", "data/aligned_dataset.py",
            "options/train_options.py")
EXTS = (".png", ".jpg", ".jpeg")


class BenchError(RuntimeError):
    """A setup step or a timed process failed (one-line message)."""


# -- the two programs -------------------------------------------------------------------------
def check_reference(ref: Path) -> str:
    """Raise unless ``ref`` holds the reference scripts; return its git commit (or 'unknown')."""
    missing = [p for p in REQUIRED if not (ref / p).is_file()]
    if missing:
        raise BenchError(f"{ref}: not a pytorch-CycleGAN-and-pix2pix checkout (missing {', '.join(missing)})")
    try:
        out = subprocess.run(["git", "-C", str(ref), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=30)
        return out.stdout.strip()[:12] or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -- the reference's requirements ------------------------------------------------------------
# dominate's API as the reference's util/html.py uses it: document(title=), .head, .add(), .render(),
# and tags used as context managers; everything is accepted and nothing is rendered
DOMINATE_STUB = {
    "__init__.py": '"""Stand-in for dominate, written by img2img tools/bench_reference.py (dominate is not '
                   'installed): accepts the calls, renders an empty page."""\n'
                   "from .tags import _Tag\n\n\n"
                   "class document(_Tag):\n"
                   "    def __init__(self, *args, **kwargs):\n"
                   "        self.head = _Tag()\n\n"
                   "    def render(self, *args, **kwargs):\n"
                   "        return ''\n",
    "tags.py": "class _Tag:\n"
               "    def __init__(self, *args, **kwargs):\n"
               "        pass\n\n"
               "    def __enter__(self):\n"
               "        return self\n\n"
               "    def __exit__(self, *exc):\n"
               "        return False\n\n"
               "    def add(self, *children):\n"
               "        return children[0] if len(children) == 1 else children\n\n\n"
               "meta = h3 = table = tr = td = p = a = img = br = _Tag\n",
}


def reference_requirements(stub_root: Path) -> tuple[dict[str, str], Path | None]:
    """({package: how the reference gets it}, a folder to put on its PYTHONPATH or None).

    Writes the dominate stand-in under ``stub_root`` when dominate is not installed.
    """
    import importlib.metadata as md
    how = {"visdom": "not imported (--display_id 0)", "wandb": "not imported (no --use_wandb; guarded import)"}
    try:
        import dominate  # noqa: F401  - the reference's util/html.py needs it
        how["dominate"] = f"installed ({md.version('dominate')})"
        return how, None
    except ImportError:
        pkg = stub_root / "dominate"
        pkg.mkdir(parents=True, exist_ok=True)
        for name, text in DOMINATE_STUB.items():
            (pkg / name).write_text(text)
        how["dominate"] = ("not installed: a stand-in module on the reference's PYTHONPATH (bench work folder); "
                           "its test.py writes an empty index.html")
        return how, stub_root


class Programs:
    """Command lines of the reference and of img2img, all writing under ``work``."""

    def __init__(self, ref: Path, work: Path, stubs: Path | None = None):
        self.ref, self.work = ref, work
        self.py = sys.executable
        base = {**os.environ, "PYTHONPYCACHEPREFIX": str(work / "pycache"), "PYTHONUNBUFFERED": "1"}
        # ours: this checkout's img2img first; the reference: its own folder (the script's) and any stand-ins
        self.env = {**base, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.ref_env = {**base, "PYTHONPATH": os.pathsep.join(filter(None, [str(stubs) if stubs else None,
                                                                             os.environ.get("PYTHONPATH")]))}
        self.ckpt = work / "ref_checkpoints"

    def ref_train(self, dataroot: Path, steps: int, name: str, save: bool = False) -> list[str]:
        return [self.py, str(self.ref / "train.py"), "--dataroot", str(dataroot), "--name", name,
                "--model", "pix2pix", "--gpu_ids", "-1", "--checkpoints_dir", str(self.ckpt),
                "--display_id", "0", "--no_html", "--n_epochs", "1", "--n_epochs_decay", "0",
                "--lr_policy", "step", "--max_dataset_size", str(steps),
                *(["--save_epoch_freq", "1"] if save else [])]

    def ref_test(self, photos: Path, count: int, name: str, results: Path) -> list[str]:
        return [self.py, str(self.ref / "test.py"), "--dataroot", str(photos), "--name", name,
                "--model", "test", "--netG", "unet_256", "--norm", "batch", "--dataset_mode", "single",
                "--gpu_ids", "-1", "--checkpoints_dir", str(self.ckpt), "--results_dir", str(results),
                "--num_test", str(count)]

    def ours_train(self, pairs: Path, steps: int, out: Path, extra: tuple[str, ...] = ()) -> list[str]:
        return [self.py, "-m", "img2img", "train", "--pairs", str(pairs), "--out", str(out),
                "--max-steps", str(steps), "--no-progress", "--device", "cpu", *extra]

    def ours_translate(self, model: Path, photos: Path, out: Path, batch_size: int) -> list[str]:
        return [self.py, "-m", "img2img", "translate", str(model), str(photos), str(out),
                "--batch-size", str(batch_size), "--no-progress", "--device", "cpu"]

    def run(self, cmd: list[str], what: str) -> float:
        """Run ``cmd`` in ``work``; its wall-clock seconds.  Raises BenchError with its last output line."""
        log = self.work / "logs" / f"{what}.log"
        log.parent.mkdir(exist_ok=True)
        env = self.ref_env if len(cmd) > 1 and cmd[1].startswith(str(self.ref)) else self.env   # its scripts
        t = time.perf_counter()
        with open(log, "w") as f:
            rc = subprocess.run(cmd, cwd=self.work, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
        wall = time.perf_counter() - t
        if rc != 0:
            lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
            raise BenchError(f"{what} failed (exit {rc}): {lines[-1] if lines else 'no output'} (log {log})")
        return wall


# -- data -------------------------------------------------------------------------------------
def make_dataroot(src: Path | None, count: int, work: Path) -> Path:
    """``work/data/train`` with ``count`` AB pair files (symlinks to ``src``'s, cycled, or synthetic)."""
    from PIL import Image
    train = work / "data" / "train"
    train.mkdir(parents=True)
    if src is None:
        rng = np.random.default_rng(0)
        for i in range(count):
            a = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
            b = np.clip(a.astype(int) // 2 + 64, 0, 255).astype(np.uint8)
            Image.fromarray(np.concatenate([a, b], 1)).save(train / f"{i:04d}.png")
        return train
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in EXTS and p.is_file())
    if not files:
        raise BenchError(f"{src}: no AB pair files (.png/.jpg) directly inside; the reference needs AB files")
    for i in range(count):
        f = files[i % len(files)]
        (train / f"{i:04d}{f.suffix.lower()}").symlink_to(f.resolve())
    return train


def make_photos(train: Path, count: int, dst: Path) -> Path:
    """``count`` 256x256 PNGs: the left (A) halves of the pair files, resized."""
    from PIL import Image
    dst.mkdir(parents=True)
    files = sorted(train.iterdir())
    for i in range(count):
        with Image.open(files[i % len(files)]) as im:
            im = im.convert("RGB")
            w, h = im.size
            im.crop((0, 0, w // 2, h)).resize((256, 256), Image.BICUBIC).save(dst / f"{i:04d}.png")
    return dst


# -- the benchmark ----------------------------------------------------------------------------
def run_reference_bench(ref: str | Path, *, steps=(5, 25), images=(5, 55), rounds: int = 2,
                        pairs: str | Path | None = None, model: str | Path | None = None, model_steps: int = 1,
                        batch_sizes=(1, 8), int8: bool = True, train_variants=(), log=print) -> dict:
    """Time the reference and img2img side by side (see the module docs); returns the figures.

    The img2img model translated (and quantized) is ``model``, or one trained here (untimed)
    for ``model_steps`` steps on ``pairs`` (default 1 step: enough for timing, not for the
    int8 accuracy figure).
    """
    ref = Path(ref).resolve()
    commit = check_reference(ref)
    (n_s, m_s), (n_i, m_i) = steps, images
    if not (0 < n_s < m_s and 0 < n_i < m_i):
        raise BenchError(f"need 0 < N < M for steps and images, got {steps} and {images}")
    if rounds < 1:
        raise BenchError(f"rounds must be at least 1, got {rounds}")
    if model_steps < 1:
        raise BenchError(f"model steps must be at least 1, got {model_steps}")
    if model is not None and model_steps != 1:
        raise BenchError("give a trained model (--model) or the steps to train one (--model-steps), not both")
    work = Path(tempfile.mkdtemp(prefix="img2img-refbench-"))
    try:
        fig = _bench(ref, commit, work, n_s, m_s, n_i, m_i, rounds, pairs, model, model_steps, batch_sizes, int8,
                     log, tuple(train_variants))
        fig["machine"] = machine.describe()
        return fig
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bench(ref, commit, work, n_s, m_s, n_i, m_i, rounds, pairs, model, model_steps, batch_sizes, int8,
           log, train_variants=()) -> dict:
    needs, stubs = reference_requirements(work / "stubs")
    prog = Programs(ref, work, stubs)
    src = Path(pairs).resolve() if pairs else None
    train_root = make_dataroot(src, m_s + 1, work)      # one more than M: neither run reaches an epoch end
    photos = {k: make_photos(train_root, k, work / f"photos_{k}") for k in sorted({1, n_i, m_i})}
    fig: dict = {"reference": str(ref), "reference_commit": commit, "steps": [n_s, m_s], "images": [n_i, m_i],
                 "rounds": rounds, "pairs": str(src) if src else "synthetic", "cpu_count": os.cpu_count(),
                 "reference_requirements": needs}

    # -- untimed set-up: a reference checkpoint, our model and its ONNX files --------------------
    log(f"reference bench: {ref} (commit {commit}); work folder {work}")
    for name, how in needs.items():
        log(f"  reference needs {name}: {how}")
    what = "given" if model is not None else f"{model_steps} step(s) on {src or 'the synthetic pairs'}"
    log(f"  set-up: reference model (1 step), img2img model ({what}), ONNX export" + (", int8" if int8 else ""))
    prog.run(prog.ref_train(train_root.parent, 1, "model", save=True), "setup_ref_model")
    if model is None:
        prog.run(prog.ours_train(src or train_root, model_steps, work / "ours_model"), "setup_ours_model")
        model_path, trained = work / "ours_model", model_steps > 1
    else:
        model_path, trained = Path(model).resolve(), True
    fig["model"] = str(model) if model is not None else f"trained here, {model_steps} step(s)"
    onnx_path = work / "model.onnx"
    prog.run([prog.py, "-m", "img2img", "export", str(model_path), str(onnx_path)], "setup_export")
    backends = [("torch", model_path), ("onnx", onnx_path)]
    if int8:
        fig["int8"] = _quantize(onnx_path, work / "model.int8.onnx", train_root, trained)
        backends.append(("onnx-int8", work / "model.int8.onnx"))
        log(f"  int8: {fig['int8']['summary']}")

    jobs_train = {"reference train.py": lambda k, i: prog.ref_train(train_root.parent, k, f"t{k}_{i}"),
                  "img2img train": lambda k, i: prog.ours_train(train_root, k, work / "out" / f"train{k}_{i}")}
    for flags in train_variants:                            # e.g. "--amp bf16": the same step with other flags
        jobs_train[f"img2img train {flags}"] = (
            lambda k, i, extra=tuple(flags.split()): prog.ours_train(train_root, k, work / "out" / f"train{k}_{i}",
                                                                     extra))
    jobs_translate = {"reference test.py": lambda k, i: prog.ref_test(photos[k], k, "model", work / "out" / f"r{k}_{i}")}
    for name, path in backends:
        for bs in batch_sizes:
            jobs_translate[f"img2img translate, {name}, batch {bs}"] = (
                lambda k, i, path=path, bs=bs, name=name:
                prog.ours_translate(path, photos[k], work / "out" / f"{name}{bs}_{k}_{i}", bs))
    for label, job in jobs_translate.items():               # warm-up: one image each, untimed
        prog.run(job(1, -1), "warmup_" + _slug(label))
        shutil.rmtree(work / "out", ignore_errors=True)

    walls: dict[str, dict[int, list[float]]] = {k: {} for k in (*jobs_train, *jobs_translate)}
    for r in range(rounds):
        for jobs, counts in ((jobs_train, (n_s, m_s)), (jobs_translate, (n_i, m_i))):
            for k in counts:
                for label, job in jobs.items():
                    w = prog.run(job(k, r), f"{_slug(label)}_{k}_{r}")
                    walls[label].setdefault(k, []).append(w)
                    log(f"  round {r + 1}/{rounds}: {label}, {k}: {w:.1f} s")
                    shutil.rmtree(work / "out", ignore_errors=True)
    fig["train"] = {label: _difference(walls[label], n_s, m_s) for label in jobs_train}
    fig["translate"] = {label: _difference(walls[label], n_i, m_i) for label in jobs_translate}
    return fig


def _difference(walls: dict[int, list[float]], n: int, m: int) -> dict:
    """Per-unit seconds by the difference method, per round and as their mean; the fixed cost."""
    per = [(wm - wn) / (m - n) for wn, wm in zip(walls[n], walls[m])]
    mean = statistics.fmean(per)
    return {"per_unit_s": mean, "per_round": per, "fixed_s": statistics.fmean(walls[n]) - n * mean,
            "walls": {str(k): v for k, v in walls.items()}}


def _quantize(onnx_path: Path, out: Path, train_root: Path, trained: bool) -> dict:
    """int8 model calibrated on the model's training pairs (or the bench's); its accuracy."""
    from img2img.quantize import quantize_onnx, read_metadata
    cfg_pairs = read_metadata(onnx_path)[1].data.pairs
    calib = cfg_pairs if trained and cfg_pairs and Path(cfg_pairs).is_dir() else str(train_root)
    t = time.perf_counter()
    r = quantize_onnx(onnx_path, out, data=calib, threshold=0.0)
    res = {"psnr_mean": r.psnr_mean, "psnr_min": r.psnr_min, "images": r.images, "calibration": calib,
           "seconds": time.perf_counter() - t, "settings": r.settings, "trained_model": trained}
    res["summary"] = (f"PSNR vs float {r.psnr_mean:.1f} dB mean, {r.psnr_min:.1f} min over {r.images} "
                      f"calibration images" + ("" if trained else " (1-step model: not an accuracy figure; "
                                                                  "pass --model RUN or --model-steps K)"))
    return res


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_")


def rows(fig: dict) -> list[tuple[str, str, str]]:
    """Table rows (label, figure, comparison) for :func:`print_rows` / tools/bench.py."""
    out = [(f"reference: {fig['reference']} @ {fig['reference_commit']}",
            f"difference method, steps {fig['steps'][0]}/{fig['steps'][1]}, "
            f"images {fig['images'][0]}/{fig['images'][1]}, {fig['rounds']} round(s)", "whole processes")]
    for name, how in fig.get("reference_requirements", {}).items():
        out.append((f"reference needs {name}", how, ""))
    t = fig["train"]
    ref = t["reference train.py"]["per_unit_s"]
    for label, r in t.items():
        s = r["per_unit_s"]
        spread = ", ".join(f"{x:.3f}" for x in r["per_round"])
        cmp = "1.00 (reference)" if label.startswith("reference") else f"reference / this = {_ratio(ref, s)}"
        out.append((f"train step 256^2, {label}", f"{s:.3f} s/step (rounds: {spread}); fixed {r['fixed_s']:.1f} s",
                    cmp))
    tr = fig["translate"]
    ref = tr["reference test.py"]["per_unit_s"]
    for label, r in tr.items():
        s = r["per_unit_s"]
        cmp = "1.00 (reference)" if label.startswith("reference") else f"reference / this = {_ratio(ref, s)}"
        out.append((f"translate 256^2 PNG, {label}", f"{s:.3f} s/image ({1 / s:.1f}/s); fixed {r['fixed_s']:.1f} s",
                    cmp))
    if "int8" in fig:
        out.append(("int8 model accuracy", fig["int8"]["summary"], ""))
    out.append(("STEP RATIO reference / img2img",
                _ratio(t["reference train.py"]["per_unit_s"], t["img2img train"]["per_unit_s"]),
                "difference method, same run"))
    noisy = [label for part in ("train", "translate") for label, r in fig[part].items() if r["per_unit_s"] <= 0]
    if noisy:
        out.append(("WARNING", f"{len(noisy)} figure(s) not positive: the load changed more than M - N units "
                               "take; use a larger M - N, more rounds or an idle machine", ""))
    return out


def _ratio(ref: float, ours: float) -> str:
    """``ref / ours`` as "1.23x", or n/a when either figure is not positive (too noisy to divide)."""
    return f"{ref / ours:.2f}x" if ref > 0 and ours > 0 else "n/a (a figure is not positive)"


def print_rows(rows_: list[tuple[str, str, str]]) -> None:
    w0, w1 = max(len(r[0]) for r in rows_), max(len(r[1]) for r in rows_)
    for a, b, c in rows_:
        print(f"  {a:<{w0}}  {b:<{w1}}  {c}")


def add_arguments(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument(f"--{prefix}steps", type=int, nargs=2, default=[5, 25], metavar=("N", "M"),
                   help="training iterations of the short and the long run (default: 5 25)")
    p.add_argument(f"--{prefix}images", type=int, nargs=2, default=[5, 55], metavar=("N", "M"),
                   help="images translated by the short and the long run (default: 5 55)")
    p.add_argument(f"--{prefix}rounds", type=int, default=2, help="interleaved rounds (default: 2)")
    p.add_argument("--pairs", metavar="DIR", help="AB pair files to train on and take photos from "
                                                  "(default: synthetic 256x512 pairs)")
    p.add_argument("--model", metavar="RUN", help="a trained img2img run for the translation rows and the int8 "
                                                  "accuracy (default: a 1-step model)")
    p.add_argument("--model-steps", type=int, default=1, metavar="K",
                   help="without --model: train the img2img model for the translation rows and the int8 accuracy "
                        "for K steps on --pairs, untimed (default: 1, enough for timing only)")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 ONNX model")
    p.add_argument(f"--{prefix}train-variant", action="append", default=[], metavar="FLAGS",
                   help="also time 'img2img train FLAGS' in the same run, e.g. --train-variant '--amp bf16' "
                        "(repeatable)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reference", metavar="REF_DIR", help="checkout of junyanz/pytorch-CycleGAN-and-pix2pix")
    add_arguments(p)
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = p.parse_args(argv)
    try:
        fig = run_reference_bench(args.reference, steps=args.steps, images=args.images, rounds=args.rounds,
                                  pairs=args.pairs, model=args.model, model_steps=args.model_steps,
                                  int8=not args.no_int8, train_variants=args.train_variant,
                                  log=lambda s: print(s, file=sys.stderr))
    except BenchError as e:
        print(f"bench_reference: error: {e}", file=sys.stderr)
        return 1
    print(f"img2img vs reference pix2pix; {fig['machine']}")
    print_rows(rows(fig))
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
