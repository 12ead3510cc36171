"""Training speed of pix2pix options in one run: s/step of each named set of ``train`` flags.

    python tools/bench_levers.py --pairs DIR [--steps 5 25] [--rounds 2] [--json FILE] \\
        NAME="FLAGS" [NAME="FLAGS" ...]

e.g. ``default="" multiscale="--netD multiscale"``.  Each (option set, round) is one ``img2img
train`` process on DIR (256² from 286, the defaults otherwise, plus the flags); s/step by the
difference method from its log.jsonl (time at the last step minus at the first, over the steps
between), so start-up and warm-up do not count.  Option sets are interleaved within a round and
the median over rounds is printed, with each one's ratio to the first.  The CPU and torch's kernel
capability are named; nothing is asserted.  Run it on an idle machine: its figures give the step
counts of equal-time comparisons.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from machine import cpu_model  # noqa: E402
from train_timing import median_table, time_training  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--steps", type=int, nargs=2, default=[5, 25], metavar=("FIRST", "LAST"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--common", default="--direction BtoA", help="flags given to every run")
    ap.add_argument("--json", type=Path)
    ap.add_argument("sets", nargs="+", metavar='NAME="FLAGS"')
    args = ap.parse_args(argv)
    args.common = shlex.split(args.common)
    sets = dict(s.split("=", 1) for s in args.sets)
    import torch
    rows = []
    for r in range(args.rounds):
        for name, flags in sets.items():
            flagged = ["--pairs", args.pairs, *args.common, *shlex.split(flags)]
            rows.append({"name": name, "flags": flags, "round": r, **time_training(flagged, *args.steps, name)})
            print(f"round {r} {name:14s} {rows[-1]['s_per_step']:.3f} s/step", flush=True)
    meta = {"cpu": cpu_model(), "capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "common": args.common, "steps": args.steps,
            "date": time.strftime("%Y-%m-%d")}
    print(f"\n{meta['cpu']} ({meta['capability']}), torch {meta['torch']}, {meta['threads']} threads; "
          f"median of {args.rounds} rounds")
    summary = median_table(rows, list(sets))
    for row, flags in zip(summary, sets.values()):
        row["flags"] = flags
        print(f"  {row['name']:14s} {row['s_per_step']:.3f} s/step  ({row['vs_first']:.2f}x)  {flags}")
    if args.json:
        args.json.write_text(json.dumps({**meta, "rows": rows, "summary": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
