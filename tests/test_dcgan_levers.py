"""The GAN training options measured for the DCGAN defaults: --lr-d, --g-ema-start,
--label-smoothing, --instance-noise, --d-spectral-norm (and the digit-quality tool on a
real img2img run).  Tests make their own small data."""
from __future__ import annotations

import gzip
import importlib.util
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from img2img import families
from img2img.cli import main
from img2img.config import ConfigError
from img2img.families import make_config
from img2img.gan import objectives
from img2img.gan.ema import WeightEMA
from img2img.gan.launch import train
from img2img.gan.trainer import Trainer

TINY = dict(ngf=4, ndf=4, batch_size=4, progress=False)


@pytest.fixture
def idx_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    arr = np.zeros((12, 28, 28), np.uint8)
    for i in range(12):
        c = 10 + rng.integers(0, 8)
        arr[i, 4:-4, c:c + 4] = 255
    p = tmp_path / "tiny-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(struct.pack(">HBB", 0, 8, 3) + struct.pack(">3I", *arr.shape) + arr.tobytes()))
    return p


def test_label_smoothing_is_one_sided_bce():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.2])
    assert torch.allclose(objectives.bce_d(real, fake, smooth=0.0), objectives.bce_d(real, fake))
    target = torch.full_like(real, 0.9)
    want = F.binary_cross_entropy_with_logits(real, target) + F.binary_cross_entropy_with_logits(fake, torch.zeros(2))
    assert torch.allclose(objectives.bce_d(real, fake, smooth=0.1), want)
    # the smoothed loss no longer rewards infinitely confident "real" logits
    assert objectives.bce_d(torch.tensor([20.0]), fake, 0.1) > objectives.bce_d(torch.tensor([3.0]), fake, 0.1)


def test_weight_ema_copies_the_model_until_its_start():
    net = nn.Linear(3, 3)
    ema = WeightEMA(net, 0.9, start=2)
    for step in range(1, 5):
        with torch.no_grad():
            net.weight.add_(1.0)
        ema.update(net)
        same = torch.equal(ema.model.weight, net.weight)
        assert same == (step <= 2), step                 # copies for 2 updates, then lags behind


def test_spectral_norm_discriminator_has_no_batchnorm_and_unit_spectral_norms(idx_file):
    cfg = make_config(images=str(idx_file), kind="dcgan", image_size=32, d_spectral_norm=True, **TINY)
    D = families.get("dcgan")(cfg).D
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    D.train()
    for _ in range(30):                                    # power iterations converge
        D(torch.randn(4, 1, 32, 32))
    for m in convs:
        sigma = torch.linalg.matrix_norm(m.weight.detach().reshape(m.weight.shape[0], -1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)
    plain = families.get("dcgan")(make_config(images=str(idx_file), kind="dcgan", image_size=32, **TINY)).D
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())


def test_instance_noise_reaches_every_d_input_and_decays(idx_file, tmp_path):
    cfg = make_config(images=str(idx_file), kind="dcgan", image_size=32, instance_noise=0.5, out=str(tmp_path / "r"),
                      max_steps=4, **TINY)
    tr = Trainer(cfg)
    seen = []
    forward = tr.D.forward
    tr.D.forward = lambda x: seen.append(x.detach().clone()) or forward(x)
    batch = {"image": torch.full((4, 1, 32, 32), -1.0)}     # a black batch: any spread is the noise
    tr.train_step(batch)
    assert len(seen) == 3                                   # D(real), D(fake), D(fake) for G
    assert seen[0].std().item() == pytest.approx(0.5, rel=0.15)
    tr.step = tr.schedule_steps // 2                        # half way: half the noise
    seen.clear()
    tr.train_step(batch)
    assert seen[0].std().item() == pytest.approx(0.25, rel=0.15)
    off = Trainer(make_config(images=str(idx_file), kind="dcgan", image_size=32, out=str(tmp_path / "o"), **TINY))
    seen.clear()
    forward_off = off.D.forward
    off.D.forward = lambda x: seen.append(x.detach().clone()) or forward_off(x)
    off.train_step(batch)
    assert torch.equal(seen[0], batch["image"])


def test_cli_flags_reach_the_config_and_train(idx_file, tmp_path):
    run = tmp_path / "cli"
    assert main(["train", "--images", str(idx_file), "--model", "dcgan", "--size", "32", "--ngf", "4", "--ndf", "4",
                 "--batch-size", "4", "--max-steps", "3", "--no-progress", "--out", str(run),
                 "--lr-d", "4e-4", "--g-ema-start", "2", "--label-smoothing", "0.1", "--instance-noise", "0.05",
                 "--d-spectral-norm"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    t = cfg["train"]
    assert (t["lr_d"], t["g_ema_start"], t["label_smoothing"], t["instance_noise"]) == (4e-4, 2, 0.1, 0.05)
    assert cfg["model"]["d_spectral_norm"] is True
    state = torch.load(run / "latest.pt", weights_only=True)["state"]
    assert state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(4e-4)
    assert state["g_ema"]["updates"] == 3


def test_bad_lever_settings_are_config_errors(idx_file):
    with pytest.raises(ConfigError, match="label-smoothing is for"):
        families.check(make_config(images=str(idx_file), kind="dcgan", objective="hinge", label_smoothing=0.1))
    with pytest.raises(ConfigError, match="--d-spectral-norm is a setting of dcgan, not of mlp"):
        families.check(make_config(images=str(idx_file), kind="mlp", d_spectral_norm=True))
    with pytest.raises(ConfigError, match="instance-noise"):
        families.check(make_config(images=str(idx_file), kind="dcgan", instance_noise=-1))
    with pytest.raises(ConfigError, match="g-ema-start"):
        families.check(make_config(images=str(idx_file), kind="dcgan", g_ema_start=-1))


def test_digit_quality_scores_an_img2img_run(idx_file, tmp_path):
    spec = importlib.util.spec_from_file_location("digit_quality",
                                                  Path(__file__).resolve().parents[1] / "tools" / "digit_quality.py")
    dq = importlib.util.module_from_spec(spec)
    sys.modules["digit_quality"] = dq
    spec.loader.exec_module(dq)
    run = tmp_path / "run"
    train(images=str(idx_file), kind="dcgan", image_size=32, out=str(run), max_steps=2, **TINY)
    x, size = dq.load_images(run, 6, seed=1)
    assert x.shape == (6, 1, 28, 28) and size == 32 and 0 <= x.min() and x.max() <= 1
    y, _ = dq.load_images(run / "model.pt", 6, seed=1)
    assert torch.equal(x, y)
    with pytest.raises(dq.QualityError, match="latest.pt"):
        dq.load_images(tmp_path / "run" / "config.json", 2)
