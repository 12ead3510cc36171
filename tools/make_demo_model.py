"""Make the bundled model weights/shapes/: a small pix2pix generator trained on the demo set.

    python tools/make_demo_model.py [--steps 8000] [--out weights/shapes] [--overwrite]

Trains on datasets/shapes/train from a fixed seed (U-Net ngf 16 at 128x128, no
crop jitter, the schedule's constant and decaying halves of equal length), then
writes into ``--out``:

* ``model.pt`` -- the generator (its weight EMA) and the config that built it,
  weights stored in float16 to halve the file (they load into float32: the
  outputs differ from the float32 weights' by < 1e-3);
* ``shapes.onnx`` -- its self-checking ONNX export (RGB in, RGB out, any size);
* ``shapes.int8.onnx`` -- the int8 version for CPUs (calibrated on the training pairs);
* ``eval.json`` -- held-out figures on datasets/shapes/val (``img2img eval``), next
  to the identity and mean-image baselines (tools/baselines.py).

Then ``img2img translate weights/shapes IN OUT`` and ``img2img serve weights/shapes``
work right after install.  The training run itself goes to a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

SETTINGS = dict(crop_size=128, crop=False, ngf=16, ndf=32, seed=0)


def portable(config: dict, data: Path, out: Path) -> dict:
    """The run's config with this machine's paths made relative to the repository (as a user at its root sees them)."""
    def rel(p: Path) -> str:
        p = p.resolve()
        return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else p.name
    config = {k: dict(v) for k, v in config.items()}
    config["data"]["pairs"] = rel(data / "train")
    config["train"]["out"] = rel(out)
    return config


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=8000, help="training steps (default: 8000, 40 epochs of 200)")
    ap.add_argument("--out", default=str(ROOT / "weights" / "shapes"), help="output folder")
    ap.add_argument("--data", default=str(ROOT / "datasets" / "shapes"), help="the demo set (train/ and val/)")
    ap.add_argument("--overwrite", action="store_true", help="replace the files in --out")
    args = ap.parse_args(argv)

    from baselines import baseline_figures

    from img2img import evaluate, export_onnx, train
    from img2img.checkpoint import load_checkpoint, save_checkpoint
    from img2img.quantize import quantize_onnx

    out, data = Path(args.out), Path(args.data)
    if (out / "model.pt").exists() and not args.overwrite:
        print(f"make_demo_model: error: {out / 'model.pt'} exists; pass --overwrite", file=sys.stderr)
        return 2
    epochs = max(1, args.steps // 400)                     # 200 pairs: constant half + decaying half
    with tempfile.TemporaryDirectory(prefix="img2img-demo-model-") as tmp:
        run = train(pairs=str(data / "train"), out=str(Path(tmp) / "run"), epochs=epochs, epochs_decay=epochs,
                    max_steps=args.steps, progress=True, **SETTINGS)
        ckpt = load_checkpoint(run / "model.pt")
        state = {"G": {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state"]["G"].items()},
                 "step": ckpt["state"]["step"]}
        out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(out / "model.pt", portable(ckpt["config"], data, out), state)
        # the float16 weights as they will be used: export and evaluate the file just written
        onnx = export_onnx(out / "model.pt", out / "shapes.onnx", overwrite=True)
        print(onnx)
        print(quantize_onnx(out / "shapes.onnx", out / "shapes.int8.onnx", data=str(data / "train"), overwrite=True))
        res = evaluate(out / "model.pt", data / "val", Path(tmp) / "eval", device="cpu", progress=False)
        full = evaluate(run / "model.pt", data / "val", Path(tmp) / "eval32", device="cpu", progress=False)
    figures = {"steps": args.steps, "settings": SETTINGS, "val_pairs": res["count"],
               "model": {k: round(res[k], 4) for k in ("l1", "psnr", "ssim")},
               "model_float32_weights": {k: round(full[k], 4) for k in ("l1", "psnr", "ssim")},
               **baseline_figures(str(data / "val"), str(data / "train"), "AtoB", 128)}
    (out / "eval.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
