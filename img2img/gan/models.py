"""Model families: how G and D are paired.  Everything that differs between
pix2pix and the unconditional GANs lives here, and nowhere in the training loop.

A family answers four questions for the trainer:

* ``generate(batch)``   -- what G is fed (pix2pix: the input image A;
  unconditional: noise), returning G's output;
* ``real(batch)``       -- the real sample G's output is compared with;
* ``d_input(batch, x)`` -- what D sees for a sample x (pix2pix: the pair
  (A, x) concatenated on channels; unconditional: x alone);
* ``g_extra(batch, fake)`` -- extra generator terms (pix2pix: lambda * L1).

plus ``d_loss_scale`` (pix2pix halves D's loss), ``display(batch, x)`` to
turn tensors into RGB in [0, 1] for sample grids, and ``prepare_eval(G)``,
the generator as it should run for samples and model.pt.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import color as colorlib
from ..config import RunConfig
from ..nets import PatchDiscriminator, UNetGenerator, init_weights


def build_generator(cfg: RunConfig) -> nn.Module:
    """The generator described by ``cfg`` (untrained)."""
    m = cfg.model
    if m.kind == "pix2pix":
        return UNetGenerator(m.input_nc, m.output_nc, m.ngf, m.depth, m.dropout)
    if m.kind == "dcgan":
        from ..nets.dcgan import DCGANGenerator
        return DCGANGenerator(m.z_dim, m.output_nc, m.ngf, m.image_size)
    if m.kind == "mlp":
        from ..nets.mlp import MLPGenerator
        return MLPGenerator(m.z_dim, m.output_nc * m.image_size ** 2, m.mlp_hidden, m.mlp_out,
                            (m.output_nc, m.image_size, m.image_size))
    raise ValueError(f"unknown model kind {m.kind!r}")


def build_discriminator(cfg: RunConfig) -> nn.Module:
    m = cfg.model
    if m.kind == "pix2pix":
        return PatchDiscriminator(m.input_nc + m.output_nc, m.ndf, m.d_layers)
    if m.kind == "dcgan":
        from ..nets.dcgan import DCGANDiscriminator
        return DCGANDiscriminator(m.output_nc, m.ndf, m.image_size)
    if m.kind == "mlp":
        from ..nets.mlp import MLPDiscriminator
        return MLPDiscriminator(m.output_nc * m.image_size ** 2, m.mlp_hidden)
    raise ValueError(f"unknown model kind {m.kind!r}")


def display_rgb(x: torch.Tensor, cfg: RunConfig, L: torch.Tensor | None = None) -> torch.Tensor:
    """A network-space tensor (N, C, H, W) -> RGB (N, 3, H, W) in [0, 1].

    ``L`` (scaled L channel) is needed to show colorization outputs (ab only).
    """
    if cfg.data.colorization:
        if x.shape[1] == 1:                      # the L input itself: show as gray
            return colorlib.merge_l_ab(x, torch.zeros_like(x).repeat(1, 2, 1, 1))
        return colorlib.merge_l_ab(L, x)
    if cfg.model.kind == "mlp" and cfg.model.mlp_out == "sigmoid":
        x = x * 2 - 1
    rgb = colorlib.decode(x, cfg.data.color)
    return rgb.repeat(1, 3, 1, 1) if rgb.shape[1] == 1 else rgb


class Pix2Pix:
    """Conditional GAN: G(A) -> B, D sees cat(A, B) or cat(A, G(A)), plus lambda * L1(G(A), B)."""

    d_loss_scale = 0.5

    def __init__(self, cfg: RunConfig):
        from ..nets.init import init_upsampling_evenly
        self.cfg = cfg
        self.G = init_upsampling_evenly(init_weights(build_generator(cfg)))
        self.D = init_weights(build_discriminator(cfg))

    def generate(self, batch: dict, G: nn.Module | None = None) -> torch.Tensor:
        return (G or self.G)(batch["A"])

    def real(self, batch: dict) -> torch.Tensor:
        return batch["B"]

    def d_input(self, batch: dict, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([batch["A"], x], 1)

    def g_extra(self, batch: dict, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        lam = self.cfg.train.lambda_l1
        return {"G_L1": lam * F.l1_loss(fake, batch["B"])} if lam > 0 else {}

    def display(self, batch: dict, fake: torch.Tensor) -> list[torch.Tensor]:
        """Rows of one sample grid: input | output | target, as RGB in [0, 1]."""
        A, B, cfg = batch["A"], batch["B"], self.cfg
        L = A if cfg.data.colorization else None
        return [display_rgb(A, cfg), display_rgb(fake, cfg, L), display_rgb(B, cfg, L)]

    def prepare_eval(self, G: nn.Module) -> nn.Module:
        """pix2pix normalises each image by its own statistics at test time: nothing to do."""
        return G.eval()


class Unconditional:
    """GAN from noise (DCGAN, the MLP GAN): G(z) -> x, D sees x alone."""

    d_loss_scale = 1.0

    def __init__(self, cfg: RunConfig):
        from ..nets.init import init_xavier
        self.cfg = cfg
        init = init_xavier if cfg.model.kind == "mlp" else init_weights
        self.G = init(build_generator(cfg))
        self.D = init(build_discriminator(cfg))

    def noise(self, n: int, device: torch.device | str, generator: torch.Generator | None = None) -> torch.Tensor:
        return sample_noise(self.cfg, n, device, generator)

    def generate(self, batch: dict, G: nn.Module | None = None) -> torch.Tensor:
        """G(z): ``batch["z"]`` when given (fixed noise for sample grids), else fresh noise."""
        z = batch.get("z")
        if z is None:
            real = batch["image"]
            z = self.noise(real.shape[0], real.device)
        return (G or self.G)(z)

    def real(self, batch: dict) -> torch.Tensor:
        return batch["image"]

    def d_input(self, batch: dict, x: torch.Tensor) -> torch.Tensor:
        return x

    def g_extra(self, batch: dict, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    def display(self, batch: dict, fake: torch.Tensor) -> list[torch.Tensor]:
        return [display_rgb(fake, self.cfg)]

    def prepare_eval(self, G: nn.Module) -> nn.Module:
        """A copy of G in eval mode whose BatchNorm statistics are measured for its current weights."""
        return recalibrate_batchnorm(G, self.cfg, copy_first=True)


def recalibrate_batchnorm(G: nn.Module, cfg: RunConfig, n: int = 1024, batch: int = 256,
                          copy_first: bool = False) -> nn.Module:
    """Set the running BatchNorm statistics of an unconditional G to their exact values for its
    current weights (an average over ``n`` fixed noise samples), and return it in eval mode.

    BatchNorm's running averages (momentum 0.1) mix the statistics of the last few
    training steps, and are copied from the live generator into the weight EMA, which
    they do not fit; measured statistics make eval-mode samples match the weights and
    independent of the batch they are drawn in.  Uses its own random generator, so the
    training run's random stream is untouched.  Networks without BatchNorm are returned as is.
    """
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return G.eval()
    if copy_first:
        G = copy.deepcopy(G)
        bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    device = next(G.parameters()).device
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                      # cumulative average over the batches below
    g = torch.Generator().manual_seed(1234)
    G.train()
    with torch.no_grad():
        for i in range(0, n, batch):
            G(sample_noise(cfg, min(batch, n - i), "cpu", g).to(device))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    return G.eval()


def sample_noise(cfg: RunConfig, n: int, device, generator: torch.Generator | None = None) -> torch.Tensor:
    """z for an unconditional generator: N(0, 1) or U(-1, 1), shape (n, z_dim)."""
    shape = (n, cfg.model.z_dim)
    if cfg.model.noise == "uniform":
        return torch.rand(shape, generator=generator, device=device) * 2 - 1
    return torch.randn(shape, generator=generator, device=device)


def build_model(cfg: RunConfig):
    """The model family for ``cfg.model.kind``."""
    return Pix2Pix(cfg) if cfg.model.kind == "pix2pix" else Unconditional(cfg)


def load_generator(path, device: str | torch.device = "cpu") -> tuple[nn.Module, RunConfig]:
    """(generator in eval mode, its RunConfig) from a run folder, model.pt or latest.pt.

    Prefers the EMA weights when the run kept them.  Needs no architecture flags:
    the config stored in the checkpoint rebuilds the network.
    """
    from ..checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint, stored_config
    p = resolve_checkpoint(path)
    if p.is_file() and p.name == "latest.pt" and (p.parent / "model.pt").is_file() \
            and (p.parent / "model.pt").stat().st_mtime >= p.stat().st_mtime:
        p = p.parent / "model.pt"               # smaller, and the same generator
    ckpt = load_checkpoint(p, map_location="cpu")
    cfg = stored_config(ckpt, p)
    state = ckpt["state"]
    ema = state.get("g_ema")
    weights = (ema.get("model") if isinstance(ema, dict) else None) or state.get("G")
    if not isinstance(weights, dict):
        raise CheckpointError(f"{p}: holds no generator weights")
    try:
        G = build_generator(cfg)
        G.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
        detail = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]
        raise CheckpointError(f"{p}: generator weights do not fit the stored config ({detail[:200]})") from None
    G = G.to(device).eval()
    if cfg.model.kind != "pix2pix" and "opt_g" in state:
        G = recalibrate_batchnorm(G, cfg)       # training state: BatchNorm stats not yet measured
    return G, cfg
