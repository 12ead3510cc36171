"""Quality of bf16 autocast against float32 at a fixed step count, on your own held-out split.

    python tools/amp_quality.py --pairs DIR [--steps 600] [--seed 1] [--modes off bf16] [--out FILE.jsonl]

Splits DIR (AB pairs) 80/20 by file name and --seed (``img2img data split``), trains the default
pix2pix (B->A, 256^2, batch 1) for --steps steps in each --amp mode from the same seed, each in
its own process, scores the held-out 20% with ``img2img eval``, and prints (and appends to
--out) one JSON row per mode: L1, PSNR, SSIM, s/step, the machine. Quality is comparable at
equal steps whatever else the machine runs; the s/step figures only on an idle machine.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402


def sh(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "img2img", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"img2img {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        return ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--modes", nargs="+", default=["off", "bf16"])
    ap.add_argument("--out", help="append the rows to this .jsonl file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sh("data", "split", args.pairs, str(tmp / "split"), "--ratios", "0.8", "0.2", "--seed", str(args.seed),
           "--no-progress")
        for mode in args.modes:
            run = tmp / f"run_{mode}"
            began = time.monotonic()
            sh("train", "--pairs", str(tmp / "split/train"), "--direction", "BtoA", "--out", str(run),
               "--max-steps", str(args.steps), "--amp", mode, "--seed", str(args.seed), "--no-progress")
            seconds = time.monotonic() - began
            sh("eval", str(run), "--pairs", str(tmp / "split/val"), "--out", str(tmp / f"eval_{mode}"),
               "--no-progress")
            r = json.loads((tmp / f"eval_{mode}/results.json").read_text())
            row = {"amp": mode, "steps": args.steps, "seed": args.seed, "held_out": r["count"],
                   "l1": round(r["l1"], 4), "psnr": round(r["psnr"], 2), "ssim": round(r["ssim"], 4),
                   "train_s_per_step_incl_startup": round(seconds / args.steps, 3),
                   "commit": commit(), "machine": describe(), "date": time.strftime("%Y-%m-%d")}
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
