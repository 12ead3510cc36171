"""What the training benchmarks share: time one ``img2img train`` process, and tabulate rounds.

* :func:`time_training` -- run ``img2img train ARGS`` to step LAST in a temporary folder; s/step by
  the difference method from its log.jsonl (time at LAST minus time at FIRST, over the steps
  between: start-up and warm-up do not count), and the process's peak resident set (ru_maxrss).
* :func:`median_table` -- per name, the median s/step over rounds, its ratio to the first name's,
  and the largest peak.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import resource, sys, json
from img2img.cli import main
rc = main(sys.argv[1:])
print("PEAK " + json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
sys.exit(rc)
"""


def time_training(args: list[str], first: int, last: int, label: str) -> dict:
    """{"s_per_step", "peak_rss_mb", "wall_s"} of ``img2img train *args`` stopped at step ``last``;
    SystemExit naming ``label`` if the run fails."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", CHILD, "train", *args, "--out", f"{tmp}/run", "--max-steps", str(last),
               "--no-progress", "--save-every", str(10 ** 9)]
        t = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
        wall = time.monotonic() - t
        if p.returncode:
            raise SystemExit(f"{label}: {p.stderr.strip()[-2000:]}")
        rows = {r["step"]: r for r in map(json.loads, Path(f"{tmp}/run/log.jsonl").read_text().splitlines())
                if "time" in r and "step" in r}
    peak_kb = int(next(line for line in p.stdout.splitlines() if line.startswith("PEAK "))[5:])
    return {"s_per_step": (rows[last]["time"] - rows[first]["time"]) / (last - first),
            "peak_rss_mb": peak_kb / 1024, "wall_s": wall}


def median_table(rows: list[dict], names: list[str], key: str = "name") -> list[dict]:
    """One entry per name (rows whose ``key`` is it): median s/step, ratio to the first name's, peak RSS."""
    out, base = [], None
    for name in names:
        mine = [r for r in rows if r[key] == name]
        s = statistics.median(r["s_per_step"] for r in mine)
        base = base or s
        out.append({key: name, "s_per_step": round(s, 4), "vs_first": round(s / base, 3),
                    "peak_rss_mb": round(max(r["peak_rss_mb"] for r in mine))})
    return out
