"""GAN objectives, each a pair of small functions on discriminator logits.

``d_loss(real, fake)`` is minimised by the discriminator and ``g_loss(fake)``
by the generator, where ``real``/``fake`` are D's raw outputs (logits) on
real and generated samples.

* ``minimax``  -- the GAN paper's equation: G minimises log(1 - D(G(z))).
  Its gradient vanishes while D easily rejects fakes, so G stalls early.
* ``nonsat``   -- non-saturating: G maximises log D(G(z)) (the paper's advice;
  the default, and pix2pix's GAN term).
* ``lsgan``    -- least squares (Mao et al.): the mean squared error of D's output
  against 1 for real and 0 for fake, as the pix2pix/CycleGAN code computes it
  (no factor 1/2, so the adversarial term weighs against λ·L1 as there).
* ``hinge``    -- hinge loss (Lim & Ye; SAGAN, BigGAN).
* ``wgan-gp``  -- Wasserstein critic with gradient penalty (Gulrajani et al.);
  the penalty is :func:`gradient_penalty`.

With logits, log D(x) = -softplus(-x) and log(1 - D(x)) = -softplus(x),
which is exact and stable where sigmoid + log would overflow.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def bce_d(real: Tensor, fake: Tensor, smooth: float = 0.0) -> Tensor:
    """-log D(x) - log(1 - D(G(z))); with ``smooth`` s > 0, one-sided label smoothing
    (Salimans et al., 2016): the target for real samples is 1 - s, i.e. the real term is
    -(1 - s) log D(x) - s log(1 - D(x))."""
    real_term = F.softplus(-real).mean() if not smooth else \
        (1 - smooth) * F.softplus(-real).mean() + smooth * F.softplus(real).mean()
    return real_term + F.softplus(fake).mean()


def minimax_g(fake: Tensor) -> Tensor:
    """log(1 - D(G(z))), minimised by G (saturates when D(G(z)) -> 0)."""
    return -F.softplus(fake).mean()


def nonsat_g(fake: Tensor) -> Tensor:
    """-log D(G(z)), minimised by G."""
    return F.softplus(-fake).mean()


def lsgan_d(real: Tensor, fake: Tensor) -> Tensor:
    return (real - 1.0).pow(2).mean() + fake.pow(2).mean()


def lsgan_g(fake: Tensor) -> Tensor:
    return (fake - 1.0).pow(2).mean()


def hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g(fake: Tensor) -> Tensor:
    return -fake.mean()


def wgan_d(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def wgan_g(fake: Tensor) -> Tensor:
    return -fake.mean()


def per_scale(fn: Callable[..., Tensor], *outputs) -> Tensor:
    """``fn`` on D's outputs (as float); a multi-scale D gives lists of logit maps, one per scale:
    then the mean of ``fn`` over the scales (so one scale weighs what a single D does)."""
    if isinstance(outputs[0], (list, tuple)):
        return sum(fn(*(o.float() for o in each)) for each in zip(*outputs)) / len(outputs[0])
    return fn(*(o.float() for o in outputs))


def detached(outputs):
    """D's outputs (a tensor, or a multi-scale D's list) cut from the graph, as float."""
    if isinstance(outputs, (list, tuple)):
        return [o.detach().float() for o in outputs]
    return outputs.detach().float()


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """E[(||grad_x critic(x)||_2 - 1)^2] at random interpolates of real and fake inputs (a
    multi-scale critic: the gradient of the sum of its scales' scores)."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x)
    total = sum(o.sum() for o in out) if isinstance(out, (list, tuple)) else out.sum()
    (grad,) = torch.autograd.grad(total, x, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).pow(2).mean()


OBJECTIVES: dict[str, tuple[Callable, Callable]] = {
    "nonsat": (bce_d, nonsat_g),
    "minimax": (bce_d, minimax_g),
    "lsgan": (lsgan_d, lsgan_g),
    "hinge": (hinge_d, hinge_g),
    "wgan-gp": (wgan_d, wgan_g),
}


def get(name: str) -> tuple[Callable, Callable]:
    """(d_loss, g_loss) for an objective name."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}") from None


def d_probability(logits: Tensor, objective: str) -> Tensor:
    """What classic GAN code prints as D(x): sigmoid(logit) for the BCE objectives, the raw score otherwise
    (a multi-scale D: the mean over its scales)."""
    if isinstance(logits, (list, tuple)):
        return sum(d_probability(x.float(), objective) for x in logits) / len(logits)
    return torch.sigmoid(logits).mean() if objective in ("nonsat", "minimax") else logits.mean()
