"""Benchmarks: the machine's own matmul speed, the pix2pix training step, translation throughput.

    python tools/bench.py [--json FILE] [--steps 8] [--images 32] [--skip-translate]
    python tools/bench.py --reference REF_DIR [--ref-steps 5 25] [--ref-images 5 55] [--ref-rounds 2]
                          [--pairs DIR] [--model RUN | --model-steps K]

Prints one table; every time is also given as a ratio to the machine's own
float32 matrix-multiply speed measured in the same run, so figures from a busy
or a different machine stay comparable.  Measured, in order:

* ``matmul``: a 2048x2048 float32 matmul, GFLOP/s (the roofline used below);
* ``train step``: one pix2pix step at 256x256, batch 1, U-Net ngf 64 + PatchGAN
  ndf 64 (D update on real and fake pairs, G update through D), as img2img runs
  it, and -- a stand-in for the usual implementation, left out when the real
  one is run with ``--reference`` -- the same networks on torch's own
  convolution kernels with PyTorch's default Adam; FLOPs counted with torch's
  FlopCounterMode;
* ``translate``: per backend (torch, ONNX Runtime) and batch size, the network
  alone on 256x256 images, and a folder of 256x256 PNGs translated end to end
  (decode, network, encode, write) as ``img2img translate`` does it, seconds
  per image; model loading is reported on its own;
* peak resident memory of the process;
* with ``--reference REF_DIR`` (a checkout of junyanz/pytorch-CycleGAN-and-pix2pix):
  the reference's own ``train.py`` and ``test.py`` beside ``img2img train`` and
  ``img2img translate`` (torch, ONNX, int8 ONNX; batch 1 and 8), whole processes
  in the same run, per step / per image by the difference method
  (wall(M) - wall(N)) / (M - N), and the int8 model's PSNR against the float
  model (see ``tools/bench_reference.py``).

Nothing is asserted: speed is measured here, never in the tests.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_reference  # noqa: E402


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - t) / 1e9


def make_pairs(folder: Path, n: int, size: int = 256) -> Path:
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], 1)).save(folder / f"{i}.png")
    return folder


def bench_train(pairs: Path, steps: int, fast: bool, out: Path) -> dict:
    """Median seconds per pix2pix step.  ``fast=False`` is the usual implementation's way of
    running the same networks: torch's own convolution kernels everywhere and PyTorch's default
    (for-each) Adam, i.e. without img2img's two speed levers."""
    from torch.utils.flop_counter import FlopCounterMode

    from img2img.data import collate
    from img2img.families import make_config
    from img2img.gan.trainer import Trainer

    tr = Trainer(make_config(pairs=str(pairs), out=str(out), progress=False, device="cpu",
                             cpu_matmul=fast))
    if not fast:                        # the usual implementation's optimiser: PyTorch's default Adam
        t = tr.cfg.train
        tr.opt_g = torch.optim.Adam(tr.G.parameters(), lr=t.lr, betas=(t.beta1, t.beta2))
        tr.opt_d = torch.optim.Adam(tr.D.parameters(), lr=t.lr, betas=(t.beta1, t.beta2))
    batches = []
    for i in range(4):
        b = collate([tr.dataset[i % len(tr.dataset)]])
        b.pop("errors")
        batches.append(tr._to_device(b))
    for i in range(2):
        tr.train_step(batches[i])
    with FlopCounterMode(display=False) as fc:
        tr.train_step(batches[0])
    flops = fc.get_total_flops()
    times = []
    for i in range(steps):
        t = time.perf_counter()
        tr.train_step(batches[i % 4])
        times.append(time.perf_counter() - t)
    return {"s_per_step": float(np.median(times)), "gflop_per_step": flops / 1e9}


def g_forward_gflop() -> float:
    from torch.utils.flop_counter import FlopCounterMode

    from img2img.nets import UNetGenerator
    g = UNetGenerator().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        g(torch.randn(1, 3, 256, 256))
    return fc.get_total_flops() / 1e9


def bench_translate(backends: dict[str, Path], images: Path, out_root: Path, batch_size: int) -> dict:
    """Per backend (name -> model file): seconds to load the model; seconds per image for the network alone (a batch of
    ``batch_size`` random 256x256 images, median of 3); and end to end for the whole folder (decode,
    network, encode, write) by :func:`translate_folder` with the loaded model, as the CLI runs it."""
    from img2img.pipeline import translate_folder
    from img2img.translate import Translator
    res = {}
    n = len(list(images.glob("*.png")))
    for name, path in backends.items():
        t = time.perf_counter()
        tr = Translator.load(str(path), device="cpu", batch_size=batch_size)
        load = time.perf_counter() - t
        x = torch.rand(batch_size, 3, 256, 256)
        tr.run(x)                                                       # warm-up
        net = []
        for _ in range(3):
            t = time.perf_counter()
            tr.run(x)
            net.append((time.perf_counter() - t) / batch_size)
        t = time.perf_counter()
        translate_folder(tr, str(images), str(out_root / f"{name}_{batch_size}"), progress=False, verbose=False)
        res[name] = {"load_s": load, "network_s_per_image": float(np.median(net)),
                     "end_to_end_s_per_image": (time.perf_counter() - t) / n}
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--steps", type=int, default=8, help="timed training steps (median reported)")
    p.add_argument("--images", type=int, default=32, help="images in the translation folder")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="translation batch sizes")
    p.add_argument("--skip-translate", action="store_true")
    p.add_argument("--skip-baseline", action="store_true",
                   help="skip the stand-in baseline training step (torch's kernels, default Adam)")
    p.add_argument("--reference", metavar="REF_DIR",
                   help="also time the reference pix2pix code (a checkout of junyanz/pytorch-CycleGAN-and-pix2pix) "
                        "beside img2img, whole processes (tools/bench_reference.py); drops the stand-in row")
    bench_reference.add_arguments(p, prefix="ref-")
    args = p.parse_args(argv)
    if args.reference:
        args.skip_baseline = True
        if args.model and args.model_steps != 1:
            p.error("give a trained model (--model) or the steps to train one (--model-steps), not both")
        try:
            bench_reference.check_reference(Path(args.reference))
        except bench_reference.BenchError as e:
            p.error(str(e))

    fig: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    fig["matmul_gflops"] = matmul_gflops()
    work = Path(tempfile.mkdtemp(prefix="img2img-bench-"))
    try:
        return _run(args, fig, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, fig: dict, work: Path) -> int:
    pairs = make_pairs(work / "pairs", 4)
    fig["train"] = bench_train(pairs, args.steps, fast=True, out=work / "train_fast")
    fig["g_forward_gflop"] = g_forward_gflop()
    if not args.skip_baseline:
        fig["train_baseline"] = bench_train(pairs, args.steps, fast=False, out=work / "train_baseline")
    fig["matmul_gflops_after"] = matmul_gflops()

    if not args.skip_translate:
        from PIL import Image

        from img2img import train
        imgs = work / "images"
        imgs.mkdir()
        rng = np.random.default_rng(1)
        for i in range(args.images):
            Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(imgs / f"{i}.png")
        run = train(pairs=str(pairs), out=str(work / "run"), max_steps=1, progress=False, device="cpu")
        backends = {"torch": run / "model.pt"}
        try:
            from img2img.export import export_onnx
            export_onnx(str(run), str(work / "model.onnx"))
            backends["onnxruntime"] = work / "model.onnx"
            if not args.no_int8:
                from img2img.quantize import quantize_onnx
                quantize_onnx(work / "model.onnx", work / "model.int8.onnx", data=pairs, threshold=0.0)
                backends["onnxruntime int8"] = work / "model.int8.onnx"
        except Exception as e:  # noqa: BLE001 - onnx extras missing
            print(f"(ONNX Runtime backends skipped: {e})", file=sys.stderr)
        fig["translate"] = {bs: bench_translate(backends, imgs, work / "out", bs) for bs in args.batch_sizes}
    fig["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    roof = (fig["matmul_gflops"] + fig["matmul_gflops_after"]) / 2
    rows = [("matmul 2048^2 fp32", f"{roof:.0f} GFLOP/s", "1.00 (roofline)")]
    for key, label in (("train", "train step (img2img)"),
                       ("train_baseline", "train step (stand-in: torch kernels, default Adam)")):
        if key in fig:
            s, gf = fig[key]["s_per_step"], fig[key]["gflop_per_step"]
            floor = gf / roof
            rows.append((label, f"{s:.3f} s/step, {gf:.1f} GFLOP, {gf / s:.0f} GFLOP/s",
                         f"{floor / s:.2f} of roofline (floor {floor:.3f} s)"))
    g_floor = fig["g_forward_gflop"] / roof
    for bs, backends in fig.get("translate", {}).items():
        for name, r in backends.items():
            net, e2e = r["network_s_per_image"], r["end_to_end_s_per_image"]
            rows.append((f"translate 256^2, {name}, batch {bs}: network",
                         f"{net:.3f} s/image ({1 / net:.1f}/s)", f"{g_floor / net:.2f} of roofline (floor {g_floor:.3f} s)"))
            rows.append((f"  end to end, folder of {args.images} PNGs",
                         f"{e2e:.3f} s/image ({1 / e2e:.1f}/s)", f"{g_floor / e2e:.2f} of roofline; model load {r['load_s']:.2f} s"))
    rows.append(("peak memory", f"{fig['peak_rss_mb']:.0f} MB", ""))
    w0, w1 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"img2img bench: torch {fig['torch']}, {fig['threads']} threads")
    for a, b, c in rows:
        print(f"  {a:<{w0}}  {b:<{w1}}  {c}")
    if args.reference:
        try:
            fig["reference"] = bench_reference.run_reference_bench(
                args.reference, steps=args.ref_steps, images=args.ref_images, rounds=args.ref_rounds,
                pairs=args.pairs, model=args.model, model_steps=args.model_steps, int8=not args.no_int8,
                train_variants=args.ref_train_variant, log=lambda s: print(s, file=sys.stderr))
        except bench_reference.BenchError as e:
            print(f"bench: error: {e}", file=sys.stderr)
            return 1
        print(f"img2img vs the reference pix2pix code, whole processes; {fig['reference']['machine']}")
        bench_reference.print_rows(bench_reference.rows(fig["reference"]))
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
