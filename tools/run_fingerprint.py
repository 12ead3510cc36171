"""A fingerprint of a short training run, to check that a refactor changed no number.

    python tools/run_fingerprint.py [--steps 9] [--kind pix2pix|cyclegan|dcgan] [--out FILE.json]

Trains ``--steps`` steps (tiny data made here, fixed seed, 1 thread, --workers 0) with the
current code and prints a JSON object: sha256 of every tensor of latest.pt's state (G, D,
optimizers, EMA, meters, RNG) and of model.pt, and the logged losses.  Two commits print the
same object exactly when the run is bit-identical.  The CPU's kernel choice is pinned with
--no-cpu-matmul off/on (``--cpu-matmul`` {on,off}; default off: torch's kernels, so the result
does not depend on which layers the timing chose).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def digest(obj) -> str:
    h = hashlib.sha256()

    def walk(x):
        if isinstance(x, torch.Tensor):
            h.update(str((x.dtype, tuple(x.shape))).encode())
            h.update(x.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if x.numel() else b"")
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                h.update(str(k).encode())
                walk(x[k])
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, np.ndarray):
            h.update(x.tobytes())
        else:
            h.update(repr(x).encode())
    walk(obj)
    return h.hexdigest()[:16]


def tiny_data(root: Path, kind: str) -> dict:
    rng = np.random.default_rng(0)
    if kind == "cyclegan":
        for d in ("trainA", "trainB"):
            (root / d).mkdir(parents=True)
            for i in range(4):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / d / f"{i}.png")
        return {"unpaired": str(root)}
    if kind in ("dcgan", "mlp"):
        import gzip
        import struct
        imgs = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)   # dcgan pads 28 -> 32
        path = root / "images.gz"
        root.mkdir(parents=True)
        with gzip.open(path, "wb") as f:
            f.write(struct.pack(">IIII", 2051, 64, 28, 28) + imgs.tobytes())
        return {"images": str(path), "model": kind}
    root.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return {"pairs": str(root)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=9)
    ap.add_argument("--kind", default="pix2pix", choices=["pix2pix", "cyclegan", "dcgan", "mlp"])
    ap.add_argument("--cpu-matmul", default="off", choices=["on", "off"])
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from img2img import train
    from img2img.checkpoint import load_checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        data = tiny_data(Path(tmp) / "data", args.kind)
        size = {"image_size": 32 if args.kind == "dcgan" else 28} if args.kind in ("dcgan", "mlp") else {"load_size": 36, "crop_size": 32}
        run = train(out=str(Path(tmp) / "run"), progress=False, max_steps=args.steps, seed=5, ngf=8, ndf=8,
                    workers=0, cpu_matmul=args.cpu_matmul == "on", epochs=3, epochs_decay=2, **size, **data)
        state = load_checkpoint(run / "latest.pt")["state"]
        model = load_checkpoint(run / "model.pt")["state"]
        log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [{k: v for k, v in r.items() if k != "time"} for r in log]
    result = {"kind": args.kind, "steps": args.steps, "torch": torch.__version__,
              "state": {k: digest(v) for k, v in sorted(state.items()) if k not in ("elapsed",)},
              "model": digest(model), "log": digest(losses), "last": losses[-1]}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
