"""Margins of the learning tests: each case of tests/learning_cases.py over seeds and kernel sets.

    python tools/learning_margins.py cyclegan --seeds 0 1 2 --kernels default avx2 [--lr 1e-9] [--steps N]
        [--jsonl tools/results/learning_margins.jsonl]

A learning test passes on any x86-64 CPU only if its threshold sits well inside what the
experiment gives under every kernel set torch may pick.  Each (kernel set, seed) runs as a fresh
process: ``default`` is whatever this CPU selects; ``avx2`` sets ``ATEN_CPU_CAPABILITY=avx2`` and
``ONEDNN_MAX_CPU_ISA=AVX2``, the kernels of an AVX2-only machine.  ``--lr 1e-9`` (0 is refused as a setting) checks the case
fails when nothing is learned.  One JSON line per run goes to ``--jsonl`` (with the commit, the CPU
and the capability torch reports), and a table is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from machine import KERNELS, cpu_model  # noqa: E402

CASES = ("cyclegan", "pix2pix", "cut", "fastcut")

CHILD = """
import json, sys, torch
sys.path.insert(0, {tests!r})
import learning_cases as lc
kw = json.loads(sys.argv[1])
case = kw.pop("case")
fn = {{"cyclegan": lc.cyclegan_colour_swap, "pix2pix": lc.pix2pix_tiny, "cut": lc.cut_colour_swap,
      "fastcut": lambda **kw: lc.cut_colour_swap(kind="fastcut", **kw)}}[case]
out = fn(**kw)
out.pop("run", None)
out["capability"] = torch.backends.cpu.get_cpu_capability()
print("RESULT " + json.dumps(out))
"""


def commit() -> str:
    r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (r.stdout.strip() or "unknown") + ("+dirty" if dirty else "")


def run_one(case: str, seed: int, kernels: str, lr: float | None, steps: int | None) -> dict:
    kw: dict = {"case": case, "seed": seed}
    if lr is not None:
        kw["lr"] = lr
    if steps is not None:
        kw["steps"] = steps
    env = {**os.environ, **KERNELS[kernels]}
    with tempfile.TemporaryDirectory() as tmp:
        kw["root"] = tmp
        t = time.monotonic()
        p = subprocess.run([sys.executable, "-c", CHILD.format(tests=str(ROOT / "tests")), json.dumps(kw)],
                           capture_output=True, text=True, env=env, cwd=tmp)
        wall = time.monotonic() - t
    lines = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
    if p.returncode or not lines:
        raise SystemExit(f"{case} seed {seed} ({kernels}) failed:\n{p.stderr[-2000:]}")
    return {**json.loads(lines[-1][7:]), "seconds": round(wall, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=CASES)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--kernels", nargs="+", choices=sorted(KERNELS), default=["default", "avx2"])
    ap.add_argument("--lr", type=float, help="learning rate (1e-9: check that the case fails when nothing is learned)")
    ap.add_argument("--steps", type=int, help="training steps (cases that take them)")
    ap.add_argument("--jsonl", type=Path, default=ROOT / "tools" / "results" / "learning_margins.jsonl")
    a = ap.parse_args(argv)
    meta = {"case": a.case, "commit": commit(), "cpu": cpu_model(), "lr": a.lr, "steps": a.steps,
            "date": time.strftime("%Y-%m-%d")}
    a.jsonl.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in a.seeds:                       # interleaved: drift hits both kernel sets alike
        for k in a.kernels:
            r = {**meta, "kernels": k, "seed": seed, **run_one(a.case, seed, k, a.lr, a.steps)}
            rows.append(r)
            with a.jsonl.open("a") as f:
                f.write(json.dumps(r) + "\n")
            figs = {key: v for key, v in r.items() if key not in meta and key not in ("kernels", "seed")}
            print(f"{a.case:9s} {k:8s} seed {seed}: " + "  ".join(
                f"{key} {v:.3f}" if isinstance(v, float) else f"{key} {v}" for key, v in figs.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
