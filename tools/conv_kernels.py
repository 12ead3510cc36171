"""Per layer of the pix2pix U-Net: torch's convolution kernel against the matrix-product path.

    python tools/conv_kernels.py [--size 256] [--batch 1] [--ngf 64] [--repeats 5] [--kernels default avx2]

For every convolution of the default U-Net (256x256, batch 1), forward + backward on random data
of the shape the layer sees in training, timed by ``img2img.nets.smallconv.measure`` (best of
``--repeats``), once per kernel set in a fresh process (``avx2``: ``ATEN_CPU_CAPABILITY=avx2`` and
``ONEDNN_MAX_CPU_ISA=AVX2``, the kernels of an AVX2-only machine).  Prints one row per layer with
both times and their ratio, the totals, and the path the chooser would take (matrix path where it
is at least 5% faster).  Names the CPU and the capability torch reports.  Nothing is cached.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from machine import KERNELS, cpu_model  # noqa: E402


def child(size: int, batch: int, ngf: int, repeats: int) -> list[dict]:
    import torch
    sys.path.insert(0, str(ROOT))
    from img2img.nets import UNetGenerator
    from img2img.nets import smallconv as sc

    G = sc.use_matmul_convs(UNetGenerator(3, 3, ngf, max(2, size.bit_length() - 1)))   # down to 1x1, as training
    shapes = {}
    hooks = [m.register_forward_pre_hook(lambda m, a: shapes.setdefault(m, tuple(a[0].shape)) and None)
             for m in G.modules() if isinstance(m, (sc.Conv2d, sc.ConvTranspose2d))]
    with sc.forced(False):
        G(torch.randn(batch, 3, size, size))
    for h in hooks:
        h.remove()
    rows = []
    for m, shape in shapes.items():
        t_torch, t_mm = sc.measure(m, shape, grad=True, repeats=repeats)
        rows.append({"layer": sc._key(m, shape, True).rsplit(" ", 1)[0], "torch_ms": 1e3 * t_torch,
                     "matmul_ms": 1e3 * t_mm})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--kernels", nargs="+", choices=sorted(KERNELS), default=["default", "avx2"])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print("RESULT " + json.dumps(child(a.size, a.batch, a.ngf, a.repeats)))
        return 0
    model = cpu_model()
    for k in a.kernels:
        env = {**os.environ, **KERNELS[k]}
        cap = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                             capture_output=True, text=True, env=env).stdout.strip()
        p = subprocess.run([sys.executable, __file__, "--child", "--size", str(a.size), "--batch", str(a.batch),
                            "--ngf", str(a.ngf), "--repeats", str(a.repeats)], capture_output=True, text=True, env=env)
        line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
        if p.returncode or not line:
            print(p.stderr[-2000:], file=sys.stderr)
            return 1
        rows = json.loads(line[0][7:])
        print(f"\n{model}, torch capability {cap} (kernels: {k}), threads {os.environ.get('OMP_NUM_THREADS', 'default')}, "
              f"U-Net ngf {a.ngf}, {a.size}x{a.size}, batch {a.batch}: forward + backward per layer")
        print(f"{'layer':58s} {'torch ms':>9s} {'matmul ms':>9s} {'ratio':>6s}  choice")
        for r in rows:
            pick = "matmul" if r["matmul_ms"] < 0.95 * r["torch_ms"] else "torch"
            print(f"{r['layer']:58s} {r['torch_ms']:9.2f} {r['matmul_ms']:9.2f} {r['torch_ms'] / r['matmul_ms']:6.2f}  {pick}")
        tt, tm = sum(r["torch_ms"] for r in rows), sum(r["matmul_ms"] for r in rows)
        best = sum(min(r["torch_ms"], r["matmul_ms"]) for r in rows)
        print(f"{'all layers':58s} {tt:9.2f} {tm:9.2f} {tt / tm:6.2f}  per-layer best {best:.2f} ms "
              f"({tt / best:.2f}x torch's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
