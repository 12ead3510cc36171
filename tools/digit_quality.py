"""Sample quality of an unconditional model trained on MNIST-like digits.

    python tools/digit_quality.py RUN --mnist DIR [--n 2000] [--seed 0] [--json FILE]
    python tools/digit_quality.py samples.npz --mnist DIR        # images written by tools/dcgan_textbook.py
    python tools/digit_quality.py --reference --mnist DIR         # the scale: real vs real, noise

RUN is an img2img run folder, ``model.pt`` or ``latest.pt`` of a DCGAN / MLP GAN
(samples drawn with ``img2img.Sampler``: ``n`` images of noise seed ``seed``), or a
``.npz`` / ``.pt`` file of images: an array (N, H, W) or (N, C, H, W) with C = 1 or 3,
uint8 in 0..255 or float in [0, 1] (in a ``.npz`` under the key ``images``, or its
only array).  Every image is reduced to its first channel and resized to 28x28
(bilinear, antialiased).  DIR holds ``t10k-images-idx3-ubyte[.gz]`` and
``t10k-labels-idx1-ubyte[.gz]``.

The yardstick is a small CNN (two 3x3 conv + max-pool stages, a 128-unit
penultimate layer, 10 classes) trained once, deterministically (seed 0, one
thread, 6 epochs of Adam with +-2 px shifts), on the first 8,000 labelled t10k
digits, and cached under ``--cache`` (default ``$IMG2IMG_CACHE`` or
``~/.cache/img2img``); the file name carries a hash of the training digits and
of the recipe, so a change of either trains a new one.  Its recipe was fixed
before any GAN was scored and was never tuned on the held-out digits.
Figures, each on one line (``--json FILE`` writes them all):

* ``fid``: Frechet distance between Gaussians fitted to the classifier's
  penultimate features (128-d, after ReLU) of the N samples and of the 2,000
  held-out digits (t10k 8000-9999, never seen by the classifier);
* ``kid``: kernel inception distance on the same features, the unbiased
  estimate of the squared MMD with the kernel (x.y / 128 + 1)^3 over all
  pairs (no subsets), reported x 1000;
* ``confidence``: mean max-softmax probability of the samples;
* ``histogram``: how many samples the classifier puts in each class 0-9, and
  ``hist_dev``: the largest deviation of a class count from N/10, in %;
* ``classifier_acc``: the classifier's accuracy on the held-out digits.

FID is biased upward at small N: compare figures at the same N (2,000).  The
GAN trains on all 10,000 t10k digits, the held-out ones included: "held out"
means held out from the classifier.  ``--reference`` prints the scale (see
the README): real digits the classifier trained on (t10k 6000-7999) as they
are and after the 28 -> 32 -> 28 round trip a 32x32 model's samples make,
the held-out digits split in two (8000-8999 vs 9000-9999, both unseen; KID is
unbiased at any N, FID is not), and 2,000 images of uniform noise.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_TRAIN = 8000                     # t10k digits the classifier is trained on
HELD_OUT = (8000, 10000)           # the reference set of every FID / KID
RECIPE = "digitnet-v1: conv32-pool-conv64-pool-fc128-fc10, adam 1e-3, batch 64, 6 epochs, shift 2, seed 0"
MEAN, STD = 0.1307, 0.3081         # MNIST pixel statistics (inputs in [0, 1])


class QualityError(ValueError):
    """Bad input (one-line message naming the file and the problem)."""


# -- data --------------------------------------------------------------------
def _idx_file(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise QualityError(f"{folder}: no {stem} or {stem}.gz here (--mnist must name the folder of the t10k IDX files)")


def load_mnist(folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The t10k digits and labels: uint8 (10000, 28, 28) and int64 (10000,)."""
    from img2img.data.io import DataError
    from img2img.data.images import read_idx
    folder = Path(folder)
    if not folder.is_dir():
        raise QualityError(f"{folder}: not a folder (--mnist must name the folder of the t10k IDX files)")
    try:
        images = read_idx(_idx_file(folder, "t10k-images-idx3-ubyte"))
        labels = read_idx(_idx_file(folder, "t10k-labels-idx1-ubyte"))
    except DataError as e:
        raise QualityError(str(e)) from None
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (images.shape[0],) \
            or images.shape[0] < HELD_OUT[1]:
        raise QualityError(f"{folder}: expected 10,000 28x28 digits and as many labels, got images "
                           f"{'x'.join(map(str, images.shape))} and labels {'x'.join(map(str, labels.shape))}")
    return np.ascontiguousarray(images, dtype=np.uint8), labels.astype(np.int64)


def as_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float (N, 1, H, W) in [0, 1]."""
    return torch.from_numpy(np.array(images, dtype=np.float32)).div_(255).unsqueeze(1)


def to_28(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images in [0, 1] -> (N, 1, 28, 28): first channel, bilinear antialiased resize."""
    x = x[:, :1].float()
    if x.shape[-2:] != (28, 28):
        x = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1)


def at_size(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N, 28, 28) real digits as a ``size``-pixel model sees them and the figures see its
    samples: resized to ``size`` by img2img's data loader (bicubic up, Lanczos down), then
    back with :func:`to_28`, as (N, 1, 28, 28) in [0, 1].  Unchanged for size 28."""
    if size == 28:
        return as_unit(images)
    from img2img.data.images import fit_square
    resized = np.stack([fit_square(d[:, :, None], size, 1)[:, :, 0] for d in images])
    return to_28(as_unit(resized))


# -- the classifier -------------------------------------------------------------
class DigitNet(nn.Module):
    """(N, 1, 28, 28) in [0, 1] -> (N, 10) logits; :meth:`features` gives the (N, 128) penultimate layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),      # 32@14
                                  nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))     # 64@7
        self.fc = nn.Linear(64 * 7 * 7, 128)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(self.conv((x - MEAN) / STD).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.features(x)))


def _shift(x: torch.Tensor, g: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Each image moved by a random whole number of pixels in [-pad, pad] in x and y (zero fill)."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad,) * 4)
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=g)
    return torch.stack([xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def train_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int = 6, seed: int = 0,
                     log=print) -> DigitNet:
    """Train :class:`DigitNet` on (N, 1, 28, 28) images in [0, 1]; deterministic for a given seed
    (runs on one thread, so the weights do not depend on the machine's thread count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        net = DigitNet()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for epoch in range(epochs):
            order = torch.randperm(images.shape[0], generator=g)
            net.train()
            total = 0.0
            for i in range(0, len(order), 64):
                idx = order[i:i + 64]
                loss = F.cross_entropy(net(_shift(images[idx], g)), labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            log(f"  classifier epoch {epoch + 1}/{epochs}: loss {total / len(order):.4f}")
    finally:
        torch.set_num_threads(threads)
    return net.eval()


def cache_dir(given: str | None = None) -> Path:
    return Path(given or os.environ.get("IMG2IMG_CACHE") or Path.home() / ".cache" / "img2img")


def load_classifier(images: np.ndarray, labels: np.ndarray, cache: str | Path | None = None,
                    log=print) -> DigitNet:
    """The classifier for these t10k digits: from the cache, or trained (about a minute) and cached."""
    key = hashlib.sha256(RECIPE.encode() + images[:N_TRAIN].tobytes() + labels[:N_TRAIN].tobytes()).hexdigest()
    path = cache_dir(cache) / f"digit_classifier_{key[:16]}.pt"
    net = DigitNet()
    if path.is_file():
        try:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return net.eval()
        except Exception as e:                        # a damaged cache file: train again
            log(f"  {path}: unreadable ({str(e).splitlines()[0][:80]}); training the classifier again")
    log(f"training the digit classifier on t10k 0-{N_TRAIN - 1} (once; cached in {path})")
    net = train_classifier(as_unit(images[:N_TRAIN]), torch.from_numpy(labels[:N_TRAIN]), log=log)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    torch.save(net.state_dict(), tmp)
    os.replace(tmp, path)
    return net


@torch.no_grad()
@torch.no_grad()
def embed(net: DigitNet, x: torch.Tensor, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, 128) float64, softmax probabilities (N, 10)) of (N, 1, 28, 28) images in [0, 1]."""
    feats, probs = [], []
    for i in range(0, x.shape[0], batch):
        f = net.features(x[i:i + batch])
        feats.append(f.double())
        probs.append(F.softmax(net.out(f), 1).double())
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()


# -- distances ------------------------------------------------------------------
def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fid(f1: np.ndarray, f2: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N1, D) and (N2, D):
    |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)  (symmetric form, exact for PSD S)."""
    if f1.shape[0] < 2 or f2.shape[0] < 2:
        raise QualityError("FID needs at least 2 images on each side")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    r = _sqrt_psd(s1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross)


def kid(f1: np.ndarray, f2: np.ndarray) -> float:
    """Unbiased squared MMD between two feature sets with the cubic polynomial kernel
    k(x, y) = (x.y / D + 1)^3 (Binkowski et al., 2018), over all pairs."""
    m, n, d = f1.shape[0], f2.shape[0], f1.shape[1]
    if m < 2 or n < 2:
        raise QualityError("KID needs at least 2 images on each side")
    kxx = (f1 @ f1.T / d + 1) ** 3
    kyy = (f2 @ f2.T / d + 1) ** 3
    kxy = (f1 @ f2.T / d + 1) ** 3
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def histogram(probs: np.ndarray) -> tuple[list[int], float]:
    """Counts of the predicted classes 0-9, and the largest |count - N/10| in % of N/10."""
    counts = np.bincount(probs.argmax(1), minlength=10)
    uniform = probs.shape[0] / 10
    return counts.tolist(), float(np.abs(counts - uniform).max() / uniform * 100)


# -- the yardstick --------------------------------------------------------------
class Yardstick:
    """The classifier and the held-out digits; :meth:`score` gives every figure of a set of samples.

    The held-out digits are compared at the samples' size: for 32x32 samples they go
    28 -> 32 (img2img's loader) -> 28 (:func:`to_28`) like the samples' training data
    and the samples themselves (:func:`at_size`), so a model is not charged for the
    resize.  KID is computed on features divided by one constant, the RMS feature of
    the native held-out digits, so that x.y / D is about 1 and the cubic kernel does
    not blow up (FID uses the raw features).
    """

    def __init__(self, net: DigitNet, images: np.ndarray, labels: np.ndarray):
        self.net, self.images, self.labels = net, images, labels
        feats, probs = embed(net, as_unit(images[HELD_OUT[0]:HELD_OUT[1]]))
        self.accuracy = float((probs.argmax(1) == labels[HELD_OUT[0]:HELD_OUT[1]]).mean())
        self.kid_scale = float(np.sqrt((feats ** 2).mean()))
        self._refs = {28: feats}

    def reference(self, size: int) -> np.ndarray:
        """Features of the held-out digits as a ``size``-pixel model's training data."""
        if size not in self._refs:
            self._refs[size] = embed(self.net, at_size(self.images[HELD_OUT[0]:HELD_OUT[1]], size))[0]
        return self._refs[size]

    def score(self, x: torch.Tensor, size: int | None = None, ref: np.ndarray | None = None) -> dict:
        """Figures of (N, 1, 28, 28) samples in [0, 1] of a ``size``-pixel model (default 28)."""
        ref = self.reference(size or 28) if ref is None else ref
        f, p = embed(self.net, x)
        counts, dev = histogram(p)
        s = self.kid_scale
        return {"n": int(x.shape[0]), "size": size or 28, "fid": fid(f, ref), "kid": 1000 * kid(f / s, ref / s),
                "confidence": float(p.max(1).mean()), "histogram": counts, "hist_dev": dev}

    def references(self, n: int, seed: int, size: int = 32) -> dict:
        """The scale (module docstring): real digits of the GAN's training distribution, the
        population nearest the held-out one, the held-out halves against each other, noise."""
        lo, hi = HELD_OUT
        pick = np.sort(np.random.default_rng(seed).choice(lo, min(n, lo), replace=False))
        mixed = self.images[pick]
        out = {f"{len(pick)} random real digits of t10k 0-{lo - 1} (classifier-training digits), 28x28":
               self.score(as_unit(mixed)),
               f"the same at {size}x{size} (a perfect {size}x{size} model of all t10k digits)":
               self.score(at_size(mixed, size), size)}
        near = self.images[max(0, lo - n):lo]
        out[f"real t10k {max(0, lo - n)}-{lo - 1} (the writers nearest the held-out ones), 28x28"] = \
            self.score(as_unit(near))
        half = (hi - lo) // 2
        ref_a = embed(self.net, as_unit(self.images[lo:lo + half]))[0]
        out[f"held-out halves {lo + half}-{hi - 1} vs {lo}-{lo + half - 1} (both unseen; "
            f"FID at n {half} is biased up)"] = self.score(as_unit(self.images[lo + half:hi]), ref=ref_a)
        noise = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
        out["uniform noise, 28x28"] = self.score(noise)
        return out


# -- inputs ---------------------------------------------------------------------
def images_from_array(a, name: str) -> torch.Tensor:
    """An array of images as stored by a tool -> float (N, C, H, W) in [0, 1]; one-line errors."""
    t = torch.as_tensor(np.asarray(a)) if not isinstance(a, torch.Tensor) else a
    if t.dim() == 3:
        t = t.unsqueeze(1)
    if t.dim() != 4 or t.shape[1] not in (1, 3) or min(t.shape) < 1:
        raise QualityError(f"{name}: expected images of shape N x H x W or N x C x H x W with C = 1 or 3, "
                           f"got {'x'.join(map(str, t.shape))}")
    if t.shape[2] != t.shape[3]:
        raise QualityError(f"{name}: images must be square, got {t.shape[2]}x{t.shape[3]}")
    if t.dtype == torch.uint8:
        return t.float().div(255)
    if not t.is_floating_point():
        raise QualityError(f"{name}: images must be uint8 (0..255) or float in [0, 1], got {t.dtype}")
    t = t.float()
    if not torch.isfinite(t).all():
        raise QualityError(f"{name}: images contain NaN or infinite values")
    lo, hi = t.min().item(), t.max().item()
    if lo < -1e-3 or hi > 1 + 1e-3:
        hint = " (in [-1, 1]? map them with (x + 1) / 2)" if lo >= -1 - 1e-3 and hi <= 1 + 1e-3 else ""
        raise QualityError(f"{name}: float images must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}]{hint}")
    return t.clamp(0, 1)


def load_images(path: str | Path, n: int, seed: int = 0) -> tuple[torch.Tensor, int]:
    """(``n`` images (n, 1, 28, 28) in [0, 1], the size they were made at) from a run folder or
    model file (sampled with noise ``seed``) or the first ``n`` of a .npz / .pt file of images."""
    p = Path(path)
    if not p.exists():
        raise QualityError(f"{p}: no such file or folder")
    data = None
    if p.is_file() and p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                if "images" not in keys and len(keys) != 1:
                    raise QualityError(f"{p}: .npz holds {', '.join(keys) or 'nothing'}; expected an array "
                                       "named 'images' (or a single array)")
                data = z["images" if "images" in keys else keys[0]]
        except QualityError:
            raise
        except (OSError, ValueError, EOFError) as e:
            raise QualityError(f"{p}: not a readable .npz file ({str(e).splitlines()[0][:120]})") from None
    elif p.is_file() and p.suffix == ".pt":
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:
            raise QualityError(f"{p}: not a readable .pt file ({str(e).splitlines()[0][:120]})") from None
        if isinstance(obj, torch.Tensor):
            data = obj
        elif isinstance(obj, dict) and isinstance(obj.get("images"), torch.Tensor):
            data = obj["images"]
    if data is not None:
        x = images_from_array(data, str(p))
        if x.shape[0] < n:
            raise QualityError(f"{p}: holds {x.shape[0]} images, {n} asked (FID depends on N; "
                               f"pass --n {x.shape[0]} knowingly)")
        return to_28(x[:n]), x.shape[-1]
    from img2img import Sampler
    from img2img.checkpoint import CheckpointError
    try:
        sampler = Sampler.load(p, device="cpu")
    except (CheckpointError, OSError, ValueError) as e:
        raise QualityError(str(e).splitlines()[0]) from None
    x = sampler.sample(n, seed)
    return to_28(x), x.shape[-1]


# -- reporting ------------------------------------------------------------------
def format_figures(name: str, r: dict) -> str:
    hist = " ".join(str(c) for c in r["histogram"])
    return "\n".join([f"{name}: n {r['n']}, {r['size']}x{r['size']}",
                      f"  fid         {r['fid']:.2f}",
                      f"  kid x1000   {r['kid']:.2f}",
                      f"  confidence  {r['confidence']:.4f}",
                      f"  histogram   {hist}",
                      f"  hist_dev    {r['hist_dev']:.1f} %"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="digit_quality", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", metavar="RUN_OR_FILE",
                    help="run folder, model.pt / latest.pt, or .npz / .pt of images")
    ap.add_argument("--mnist", required=True, metavar="DIR", help="folder with the t10k images and labels IDX files")
    ap.add_argument("--n", type=int, default=2000, help="samples per input (default: 2000)")
    ap.add_argument("--seed", type=int, default=0, help="noise seed for sampling models (default: 0)")
    ap.add_argument("--reference", action="store_true", help="also print real-vs-real and noise figures")
    ap.add_argument("--cache", metavar="DIR", help="classifier cache folder (default: $IMG2IMG_CACHE or "
                                                   "~/.cache/img2img)")
    ap.add_argument("--json", metavar="FILE", help="write all figures to FILE")
    args = ap.parse_args(argv)
    try:
        if not args.inputs and not args.reference:
            raise QualityError("nothing to score: give RUN_OR_FILE and/or --reference")
        if args.n < 2:
            raise QualityError(f"--n must be at least 2, got {args.n}")
        images, labels = load_mnist(args.mnist)
        net = load_classifier(images, labels, args.cache, log=lambda s: print(s, file=sys.stderr))
        ys = Yardstick(net, images, labels)
        print(f"classifier accuracy on held-out t10k {HELD_OUT[0]}-{HELD_OUT[1] - 1}: {ys.accuracy:.4f}")
        results: dict = {"classifier_acc": ys.accuracy, "n": args.n, "seed": args.seed, "scores": {}}
        if args.reference:
            for name, r in ys.references(args.n, args.seed).items():
                results["scores"][name] = r
                print(format_figures(name, r))
        for path in args.inputs:
            x, size = load_images(path, args.n, args.seed)
            r = ys.score(x, size)
            results["scores"][path] = r
            print(format_figures(path, r))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    except QualityError as e:
        print(f"digit_quality: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
