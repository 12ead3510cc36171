"""Speed and memory of the unpaired families in one run: CycleGAN, CUT, FastCUT.

    python tools/bench_unpaired.py --unpaired DIR [--models cyclegan cut fastcut] [--steps 5 25]
        [--rounds 2] [--load-size 143] [--crop-size 128] [--ngf 32] [--json FILE]

Each (model, round) is one ``img2img train`` process on DIR (A/ and B/) with the given size and
width, the rest at the family's defaults; s/step is taken from the run's log.jsonl by the
difference method (time at the last step minus time at the first step of ``--steps``, over the
steps between), so start-up and the first steps' warm-up do not count; peak memory is the child
process's peak resident set (ru_maxrss).  Models are interleaved within each round, so a drift of
the machine hits all alike; the figure is the median over rounds.  Prints a table naming the CPU
and torch's kernel capability; nothing is asserted.  Run it on an idle machine.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from machine import cpu_model  # noqa: E402
from train_timing import median_table, time_training  # noqa: E402


def run_one(model: str, data: str, args) -> dict:
    flags = ["--unpaired", data, "--model", model, "--load-size", str(args.load_size), "--crop-size",
             str(args.crop_size), "--ngf", str(args.ngf), "--epochs", "1000"]
    return {"model": model, **time_training(flags, *args.steps, model)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--unpaired", required=True)
    ap.add_argument("--models", nargs="+", default=["cyclegan", "cut", "fastcut"])
    ap.add_argument("--steps", type=int, nargs=2, default=[5, 25], metavar=("FIRST", "LAST"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--load-size", type=int, default=143)
    ap.add_argument("--crop-size", type=int, default=128)
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import torch
    rows = []
    for r in range(args.rounds):
        for m in args.models:
            row = {**run_one(m, args.unpaired, args), "round": r}
            rows.append(row)
            print(f"round {r} {m:9s} {row['s_per_step']:.3f} s/step, peak {row['peak_rss_mb']:.0f} MB", flush=True)
    meta = {"cpu": cpu_model(), "capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "size": args.crop_size, "ngf": args.ngf, "steps": args.steps,
            "date": time.strftime("%Y-%m-%d")}
    print(f"\n{meta['cpu']} ({meta['capability']}), torch {meta['torch']}, {meta['threads']} threads; "
          f"{args.crop_size}² crops, ngf {args.ngf}, batch 1, median of {args.rounds} rounds")
    summary = median_table(rows, args.models, key="model")
    for row in summary:
        print(f"  {row['model']:9s} {row['s_per_step']:.3f} s/step  ({row['vs_first']:.2f}x {args.models[0]})  "
              f"peak RSS {row['peak_rss_mb']} MB")
    if args.json:
        args.json.write_text(json.dumps({**meta, "rows": rows, "summary": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
