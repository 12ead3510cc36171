"""The textbook DCGAN on MNIST at 32x32: the baseline img2img's DCGAN defaults are measured against.

    python tools/dcgan_textbook.py --mnist DIR --out runs/textbook --minutes 10 [--threads 2] [--seed 0]
    python tools/dcgan_textbook.py --mnist DIR --out runs/textbook_s1 --steps 1200 --seed 1
    python tools/digit_quality.py runs/textbook/samples.npz --mnist DIR

Written from the DCGAN paper (Radford et al., 2016) and the documented settings
of PyTorch's DCGAN example/tutorial, with its own networks and plain training
loop; it does not use img2img (it is the yardstick for img2img's trainer):

* nz = 100 normal noise, ngf = ndf = 64, batch 128, Adam lr 2e-4, betas
  (0.5, 0.999) for both networks, BCE on D's sigmoid output with labels
  real = 1 / fake = 0, weights N(0, 0.02), BatchNorm weights N(1, 0.02) and
  biases 0, no bias in the convolutions;
* the loop: D on a real batch (backward), D on G(z).detach() (backward), one
  D step; then G's loss BCE(D(G(z)), 1) on the same G(z), one G step; data
  reshuffled every epoch, the last smaller batch included.

**The 32x32 variant.**  The tutorial's 64x64 generator is z -> 4x4x(8 ngf) ->
8x8x(4 ngf) -> 16x16x(2 ngf) -> 32x32x(ngf) -> 64x64 image.  For 32x32 its
widest stage (the 4x4x(8 ngf) projection) is dropped:

    G: z 100 -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x1 (tanh)      (ngf = 64)
    D: 32x32x1 -> 16x16x64 -> 8x8x128 -> 4x4x256 -> 1 (sigmoid)        (ndf = 64)

so the last hidden layer of G and the first of D keep ngf / ndf channels, as
in the 64x64 network, and every stage keeps the tutorial's widths relative
to its neighbours.  This is the usual cut of the example for 32x32 data, and
it matches the issue's speed for its baseline: ~0.41 GFLOP per image per
training step (about 53 GFLOP per step of 128), ~0.5 s/step on the 2 idle
cores here, 1,128-1,253 steps in 10 minutes.  Keeping the 8 ngf projection
instead (4x4x512 -> ... -> 16x16x128) would cost 4x the FLOPs per image.
(img2img's own DCGAN at ``--size 32 --ngf 32 --ndf 32`` is this very
architecture; its ``ngf`` counts the width at 32x32 resolution.)

**Data**: the t10k digits (``--mnist DIR``), scaled to 32x32 with PIL's
bicubic filter, exactly as img2img's loader does, so both train on the same
pixels (the example's ``transforms.Resize`` would use bilinear), then mapped
to [-1, 1].

**Outputs** in ``--out``: ``generator.pt`` (state_dict and settings),
``grid.png`` (64 samples, 8x8), ``samples.npz`` (``images``: uint8 (N, 32, 32),
``--n-samples`` of noise seed ``--sample-seed``), ``summary.json`` (steps,
seconds, s/step).  Samples are drawn as the tutorial draws them: G in
training mode, BatchNorm on the statistics of each batch of 128
(``--sample-bn running`` uses the running averages instead).
"""
from __future__ import annotations

import argparse
import gzip
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

NZ, NGF, NDF, BATCH, LR, BETA1 = 100, 64, 64, 128, 2e-4, 0.5


# -- networks -----------------------------------------------------------------
class Generator(nn.Module):
    """(N, nz, 1, 1) noise -> (N, nc, 32, 32) in [-1, 1]."""

    def __init__(self, nz: int = NZ, ngf: int = NGF, nc: int = 1):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),       # 4x4
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),  # 8x8
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),          # 16x16
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())                                        # 32x32

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class Discriminator(nn.Module):
    """(N, nc, 32, 32) -> (N,) probability of being real."""

    def __init__(self, ndf: int = NDF, nc: int = 1):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),                                  # 16x16
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),     # 8x8
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),  # 4x4
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def weights_init(m: nn.Module) -> None:
    """The paper's init: conv weights N(0, 0.02); BatchNorm weights N(1, 0.02), biases 0."""
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


# -- data ---------------------------------------------------------------------
def read_digits(folder: str | Path, size: int = 32) -> torch.Tensor:
    """t10k-images-idx3-ubyte[.gz] in ``folder`` -> float (N, 1, size, size) in [-1, 1]."""
    from PIL import Image
    folder = Path(folder)
    path = next((folder / n for n in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte")
                 if (folder / n).is_file()), None)
    if path is None:
        raise SystemExit(f"dcgan_textbook: error: {folder}: no t10k-images-idx3-ubyte[.gz] here")
    raw = path.read_bytes()
    raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    magic, n, h, w = struct.unpack(">IIII", raw[:16])
    if magic != 0x803 or len(raw) != 16 + n * h * w:
        raise SystemExit(f"dcgan_textbook: error: {path}: not an IDX file of uint8 images")
    digits = np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w)
    up = np.stack([np.asarray(Image.fromarray(d).resize((size, size), Image.BICUBIC)) for d in digits])
    return torch.from_numpy(up).float().div(255).mul(2).sub(1).unsqueeze(1)


# -- training -----------------------------------------------------------------
class Textbook:
    """Networks, optimizers and one training iteration of the example's loop."""

    def __init__(self, seed: int = 0, ngf: int = NGF, ndf: int = NDF, nz: int = NZ):
        torch.manual_seed(seed)
        self.nz = nz
        self.G, self.D = Generator(nz, ngf), Discriminator(ndf)
        self.G.apply(weights_init)
        self.D.apply(weights_init)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=LR, betas=(BETA1, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=LR, betas=(BETA1, 0.999))
        self.bce = nn.BCELoss()

    def step(self, real: torch.Tensor) -> dict[str, float]:
        """One D update and one G update on a batch of real images (B, 1, 32, 32) in [-1, 1]."""
        b = real.shape[0]
        ones, zeros = torch.ones(b), torch.zeros(b)
        self.D.zero_grad()
        out_real = self.D(real)
        err_real = self.bce(out_real, ones)
        err_real.backward()
        fake = self.G(torch.randn(b, self.nz, 1, 1))
        out_fake = self.D(fake.detach())
        err_fake = self.bce(out_fake, zeros)
        err_fake.backward()
        self.opt_d.step()
        self.G.zero_grad()
        out = self.D(fake)
        err_g = self.bce(out, ones)
        err_g.backward()
        self.opt_g.step()
        return {"D": (err_real + err_fake).item(), "G": err_g.item(),
                "D_real": out_real.mean().item(), "D_fake": out_fake.mean().item()}


def batches(data: torch.Tensor, seed: int):
    """Endless shuffled batches of BATCH, epoch after epoch, the last smaller batch included."""
    g = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(data.shape[0], generator=g)
        for i in range(0, len(order), BATCH):
            yield data[order[i:i + BATCH]]


@torch.no_grad()
def draw(G: Generator, n: int, seed: int, bn: str = "batch") -> torch.Tensor:
    """n samples (n, 1, 32, 32) in [0, 1] from noise seed ``seed``, in batches of BATCH; ``bn``:
    "batch" (G in training mode, as the tutorial draws) or "running" (eval mode)."""
    G.train(bn == "batch")
    z = torch.randn(n, G.main[0].in_channels, 1, 1, generator=torch.Generator().manual_seed(seed))
    out = torch.cat([G(z[i:i + BATCH]) for i in range(0, n, BATCH)])
    return out.add(1).div(2).clamp(0, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dcgan_textbook", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", required=True, metavar="DIR", help="folder with t10k-images-idx3-ubyte[.gz]")
    ap.add_argument("--out", required=True, metavar="DIR", help="output folder")
    ap.add_argument("--minutes", type=float, help="train for this much wall-clock time")
    ap.add_argument("--steps", type=int, help="train for this many steps (the first limit reached stops)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--seed", type=int, default=0, help="init, noise and data-order seed (default: 0)")
    ap.add_argument("--n-samples", type=int, default=2000, help="samples written to samples.npz (default: 2000)")
    ap.add_argument("--sample-seed", type=int, default=0, help="noise seed of samples.npz and grid.png")
    ap.add_argument("--sample-bn", choices=["batch", "running"], default="batch",
                    help="BatchNorm statistics when sampling (default: batch, as the tutorial)")
    ap.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run in --out")
    args = ap.parse_args(argv)
    if args.minutes is None and args.steps is None:
        ap.error("give --minutes and/or --steps")
    out = Path(args.out)
    if (out / "generator.pt").exists() and not args.overwrite:
        ap.error(f"{out} already holds a run (generator.pt); use --overwrite or another --out")
    if args.threads:
        torch.set_num_threads(args.threads)
    data = read_digits(args.mnist)
    tb = Textbook(args.seed)
    it = batches(data, args.seed)
    step, start, last = 0, time.perf_counter(), {}
    limit = args.minutes * 60 if args.minutes else float("inf")
    while (args.steps is None or step < args.steps) and time.perf_counter() - start < limit:
        last = tb.step(next(it))
        step += 1
        if step % 100 == 0:
            print(f"step {step}: {time.perf_counter() - start:.0f} s, " +
                  " ".join(f"{k} {v:.3f}" for k, v in last.items()), file=sys.stderr)
    seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    settings = {"nz": NZ, "ngf": NGF, "ndf": NDF, "batch": BATCH, "lr": LR, "beta1": BETA1, "seed": args.seed,
                "threads": torch.get_num_threads()}
    torch.save({"G": tb.G.state_dict(), "settings": settings}, out / "generator.pt")
    from torchvision.utils import save_image
    save_image(draw(tb.G, 64, args.sample_seed, args.sample_bn), out / "grid.png", nrow=8, padding=2)
    imgs = draw(tb.G, args.n_samples, args.sample_seed, args.sample_bn)
    np.savez_compressed(out / "samples.npz", images=(imgs[:, 0] * 255).round().to(torch.uint8).numpy())
    summary = {**settings, "steps": step, "seconds": round(seconds, 1), "s_per_step": round(seconds / max(step, 1), 4),
               "last": last, "sample_bn": args.sample_bn}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{step} steps in {seconds:.0f} s ({seconds / max(step, 1):.3f} s/step); wrote {out}/generator.pt, "
          f"grid.png, samples.npz", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
