"""Seconds per image of the torch and ONNX Runtime translators, and how far apart their outputs are.

    python tools/bench_translate.py runs/sil runs/sil/model.onnx --images photos/ --n 16 --batch-sizes 1 8

Times :meth:`img2img.Translator.translate_tensors` on images already in memory
(resize/pad, network, resize/crop back; no file decoding or encoding), after
one warm-up batch, as the median of ``--repeats`` passes over ``--n`` images.
Also prints the max abs difference between the two backends' float outputs on
the same images.  Prints figures only; nothing is asserted.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from img2img import Translator  # noqa: E402
from img2img.data.io import list_images, load_image  # noqa: E402


def load_inputs(folder: str | None, n: int, size: int) -> list[torch.Tensor]:
    if folder is None:
        g = torch.Generator().manual_seed(0)
        return [torch.rand(3, size, size, generator=g) for _ in range(n)]
    imgs = []
    for f in list_images(folder):
        try:
            arr = load_image(f, 3)
        except ValueError:
            continue
        imgs.append(torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255)
        if len(imgs) == n:
            break
    while len(imgs) < n:                                  # repeat to reach n
        imgs.append(imgs[len(imgs) % max(1, len(imgs))])
    return imgs


def time_per_image(tr: Translator, images: list[torch.Tensor], repeats: int) -> float:
    tr.translate_tensors(images[:tr.batch_size])          # warm-up
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        tr.translate_tensors(images)
        runs.append((time.perf_counter() - t) / len(images))
    return statistics.median(runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="run folder or model.pt")
    p.add_argument("onnx", nargs="?", help="the same model exported with `img2img export`")
    p.add_argument("--images", help="folder of test images (default: random images at the model's size)")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--policy", default="resize")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    backends = {"torch": args.model, **({"onnx": args.onnx} if args.onnx else {})}
    first = Translator.load(args.model, device="cpu", policy=args.policy)
    images = load_inputs(args.images, args.n, first.size)
    sizes = sorted({tuple(x.shape[-2:]) for x in images})
    print(f"{len(images)} images ({len(sizes)} distinct sizes), policy {args.policy}, "
          f"{torch.get_num_threads()} torch threads; model {args.model}")

    outputs = {}
    results = {}
    for name, path in backends.items():
        for bs in args.batch_sizes:
            tr = Translator.load(path, device="cpu", policy=args.policy, batch_size=bs)
            results[(name, bs)] = time_per_image(tr, images, args.repeats)
            print(f"{name:6s} batch {bs:3d}: {results[(name, bs)]:.3f} s/image", flush=True)
        outputs[name] = tr.translate_tensors(images)
    if "onnx" in outputs:
        diff = max(float((a - b).abs().max()) for a, b in zip(outputs["torch"], outputs["onnx"]))
        print(f"max abs diff torch vs onnx outputs (RGB in [0, 1]): {diff:.3g}")
        for bs in args.batch_sizes:
            print(f"batch {bs}: onnx / torch time = {results[('onnx', bs)] / results[('torch', bs)]:.2f}")
    for name in backends:
        if len(args.batch_sizes) > 1:
            b0, b1 = args.batch_sizes[0], args.batch_sizes[-1]
            print(f"{name}: batch {b1} / batch {b0} time per image = {results[(name, b1)] / results[(name, b0)]:.2f}")


if __name__ == "__main__":
    main()
