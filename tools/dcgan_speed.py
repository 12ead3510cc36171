"""Seconds per step of img2img DCGAN configurations relative to the textbook DCGAN, load-independently.

    python tools/dcgan_speed.py --mnist DIR --threads 1 --rounds 7 --steps 20 \\
        --config default: --config b128:batch_size=128 --config w16:ngf=16,ndf=16,batch_size=64

On a shared machine absolute timings mean little, so every configuration is
timed in the same process as the baseline, in short interleaved bursts:
each round runs ``--steps`` steps of the textbook DCGAN (tools/dcgan_textbook.py),
then ``--steps`` of each configuration, in a rotating order; the figure of a
configuration is the median over rounds of its time per step divided by the
textbook's time per step in the same round.  From that ratio, the steps it
gets in the time the textbook gets ``--textbook-steps`` steps (default: 1,128
and 1,253, the two 10-minute runs of the issue on the idle 2 cores).

A configuration is ``NAME:key=value,key=value`` with img2img setting names
(``make_config``; always ``kind=dcgan, image_size=32`` on the t10k images,
1 channel); values are parsed as Python literals.  Its step is timed as
``img2img train`` runs it: the trainer's own data loader, device transfer,
learning-rate update, ``train_step`` (D and G updates, the weight EMA),
the log line; plus the end-of-epoch work (sample grid with BatchNorm
re-measurement, checkpoint, loss plot), timed once per round and spread over
the steps of an epoch.
"""
from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_config(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    settings = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        try:
            settings[k.strip()] = ast.literal_eval(v.strip())
        except (ValueError, SyntaxError):
            settings[k.strip()] = v.strip()
    return name, settings


class Img2imgRunner:
    """An img2img Trainer driven step by step like Trainer.fit does it."""

    def __init__(self, images: str, settings: dict, out: Path, dataset=None):
        from img2img.families import make_config
        from img2img.gan.trainer import Trainer
        cfg = make_config(kind="dcgan", image_size=32, images=images, out=str(out), progress=False, **settings)
        self.trainer = Trainer(cfg, dataset=dataset)
        self.trainer.out.mkdir(parents=True, exist_ok=True)
        (self.trainer.out / "samples").mkdir(exist_ok=True)
        self.log = open(self.trainer.out / "log.jsonl", "a", buffering=1)
        self.epoch, self.it = 0, None

    def _next(self):
        tr = self.trainer
        while True:
            if self.it is None:
                self.it = iter(tr._loader(self.epoch, 0, tr.steps_per_epoch))
            try:
                return next(self.it)
            except StopIteration:
                self.epoch, self.it = self.epoch + 1, None

    def steps(self, n: int) -> None:
        tr = self.trainer
        for _ in range(n):
            batch = tr._to_device(self._next())
            lr = tr._set_lr()
            logs = tr.train_step(batch)
            tr.step += 1
            self.log.write(json.dumps({"step": tr.step, "epoch": self.epoch + 1, "lr": lr, "time": 0.0, **logs}) + "\n")
            tr.meters.update(logs)

    def epoch_end_per_step(self) -> float:
        """Seconds of the end-of-epoch work (grid, checkpoint, plot) per training step."""
        t = time.perf_counter()
        self.trainer.end_of_epoch()
        return (time.perf_counter() - t) / self.trainer.steps_per_epoch


class TextbookRunner:
    def __init__(self, mnist: str, seed: int = 0):
        import dcgan_textbook as tb
        self.tb, self.data = tb.Textbook(seed), tb.read_digits(mnist)
        self.it = tb.batches(self.data, seed)

    def steps(self, n: int) -> None:
        for _ in range(n):
            self.tb.step(next(self.it))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dcgan_speed", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", required=True, metavar="DIR")
    ap.add_argument("--config", action="append", default=[], metavar="NAME:k=v,...")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20, help="steps per burst (textbook: steps // 4 + 1)")
    ap.add_argument("--textbook-steps", type=float, nargs="+", default=[1128, 1253],
                    help="the textbook's steps in the time budget (default: the issue's 10-minute figures)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    mnist = Path(args.mnist)
    images = str(next(p for p in (mnist / "t10k-images-idx3-ubyte.gz", mnist / "t10k-images-idx3-ubyte")
                      if p.exists()))
    configs = [parse_config(c) for c in args.config] or [("default", {})]
    from img2img.data.images import ImageDataset
    dataset = ImageDataset(images, 32, 1)
    with tempfile.TemporaryDirectory() as tmp:
        runners = {name: Img2imgRunner(images, s, Path(tmp) / f"run{i}", dataset) for i, (name, s) in enumerate(configs)}
        base = TextbookRunner(args.mnist)
        tb_steps = max(2, args.steps // 4 + 1)          # the textbook's step is ~4x longer than a small config's
        base.steps(2)
        for r in runners.values():                        # warm-up (and first allocations)
            r.steps(3)
        ratios = {name: [] for name in runners}
        secs = {name: [] for name in runners}
        base_secs = []
        order = list(runners)
        for rnd in range(args.rounds):
            t = time.perf_counter()
            base.steps(tb_steps)
            b = (time.perf_counter() - t) / tb_steps
            base_secs.append(b)
            for name in order[rnd % len(order):] + order[:rnd % len(order)]:
                r = runners[name]
                t = time.perf_counter()
                r.steps(args.steps)
                s = (time.perf_counter() - t) / args.steps + r.epoch_end_per_step()
                secs[name].append(s)
                ratios[name].append(s / b)
            print(f"round {rnd + 1}/{args.rounds}: textbook {b:.3f} s/step; " +
                  ", ".join(f"{n} {secs[n][-1]:.3f}" for n in order), file=sys.stderr)
        for r in runners.values():
            r.log.close()
    lo, hi = min(args.textbook_steps), max(args.textbook_steps)
    print(f"threads {args.threads}, {args.rounds} rounds; textbook median {statistics.median(base_secs):.3f} s/step")
    print(f"{'config':24s} {'s/step':>8s} {'ratio':>7s} {'steps for textbook ' + f'{lo:g}-{hi:g}':>28s}  settings")
    out = {"threads": args.threads, "textbook_s_per_step": statistics.median(base_secs), "configs": {}}
    for (name, s) in configs:
        ratio = statistics.median(ratios[name])
        steps = [round(x / ratio) for x in args.textbook_steps]
        print(f"{name:24s} {statistics.median(secs[name]):8.3f} {ratio:7.3f} {min(steps):>13d}-{max(steps):<14d}  {s}")
        out["configs"][name] = {"settings": s, "s_per_step": statistics.median(secs[name]), "ratio": ratio,
                                "ratios": ratios[name], "steps": steps}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
