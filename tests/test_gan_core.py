"""The general GAN core: DCGAN and MLP nets, image/IDX data, unconditional training,
resume, and sampling (API and CLI).  Tests make their own small data."""
from __future__ import annotations

import gzip
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from img2img.cli import main
from img2img import families
from img2img.config import ConfigError
from img2img.data import DataError
from img2img.families import make_config, make_dataset
from img2img.data.images import ImageDataset, fit_square, is_idx_file, read_idx
from img2img.families.unconditional import recalibrate_batchnorm
from img2img.inference import load_generator
from img2img.gan.launch import train
from img2img.gan.trainer import Trainer
from img2img.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from img2img.nets.mlp import MLPDiscriminator, MLPGenerator
from img2img.sampling import Sampler, interpolate, sample

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"


# -- helpers ---------------------------------------------------------------------
def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    return struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def digits(n: int = 16, size: int = 28, seed: int = 0) -> np.ndarray:
    """n uint8 'digits': a bright bar or ring on black, like MNIST strokes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        c = size / 2 + rng.uniform(-3, 3, 2)
        if i % 2:
            r = np.hypot(yy - c[0], xx - c[1])
            out[i][(r > size / 5) & (r < size / 3)] = 255
        else:
            out[i][4:-4, int(c[1]) - 2:int(c[1]) + 2] = 255
    return out


@pytest.fixture
def idx_file(tmp_path: Path) -> Path:
    p = tmp_path / "tiny-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(idx_bytes(digits())))
    return p


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """Made-up RGB images of different sizes, in nested folders."""
    rng = np.random.default_rng(1)
    root = tmp_path / "imgs"
    for i in range(10):
        h, w = (40, 56) if i % 2 else (48, 48)
        arr = np.zeros((h, w, 3), np.uint8)
        arr[..., i % 3] = 200
        arr[h // 4:3 * h // 4, w // 4:3 * w // 4] = rng.integers(0, 255, 3)
        sub = root / ("a" if i < 5 else "b/c")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(sub / f"{i}.png")
    return root


TINY = dict(ngf=4, ndf=4, batch_size=4, progress=False)


# -- networks --------------------------------------------------------------------
@pytest.mark.parametrize("size,blocks", [(32, 3), (64, 4), (128, 5)])
@pytest.mark.parametrize("ch", [1, 3])
def test_dcgan_shapes_and_layers(size, blocks, ch):
    G, D = DCGANGenerator(100, ch, 8, size), DCGANDiscriminator(ch, 8, size)
    x = G(torch.randn(3, 100))
    assert x.shape == (3, ch, size, size) and x.abs().max() <= 1
    assert D(x).shape == (3,)
    convT = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convT) == 1 + blocks                      # projection + strided blocks
    assert convT[0].out_channels == 8 * 8                 # z -> 4x4x(8*ngf)
    assert len([m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)]) == blocks
    layers = list(D.net)
    assert isinstance(layers[0], torch.nn.Conv2d) and isinstance(layers[1], torch.nn.LeakyReLU)  # no BN first
    assert layers[1].negative_slope == 0.2
    assert len([m for m in D.modules() if isinstance(m, torch.nn.BatchNorm2d)]) == blocks - 1
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for m in D.modules())


def test_dcgan_rejects_other_sizes():
    with pytest.raises(ValueError, match="32, 64, 128"):
        DCGANGenerator(100, 1, 8, 48)
    with pytest.raises(ConfigError, match="--size"):
        families.check(make_config(images="x", kind="dcgan", image_size=28))


def test_mlp_gan_is_the_papers_mnist_mlp():
    G, D = MLPGenerator(100, 784, 128, "sigmoid", (1, 28, 28)), MLPDiscriminator(784, 128)
    assert sum(p.numel() for p in G.parameters()) == 100 * 128 + 128 + 128 * 784 + 784
    assert sum(p.numel() for p in D.parameters()) == 784 * 128 + 128 + 128 + 1
    x = G(torch.randn(5, 100))
    assert x.shape == (5, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    assert D(x).shape == (5,)
    assert MLPGenerator(100, 784, 128, "tanh")(torch.randn(2, 100)).min() >= -1


def test_initialisation_per_family():
    cfg = make_config(images="x", kind="mlp", output_nc=1)
    m = families.get(cfg.model.kind)(cfg)
    w = m.G.net[0].weight                                  # Xavier uniform: |w| <= sqrt(6 / (fan_in + fan_out))
    bound = math.sqrt(6 / (100 + 128))
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert m.G.net[0].bias.abs().max() == 0
    d = families.get("dcgan")(make_config(images="x", kind="dcgan", image_size=32, ngf=16, ndf=16))
    assert d.G.net[0].weight.std().item() == pytest.approx(0.02, rel=0.05)   # DCGAN: N(0, 0.02)


# -- IDX files and image folders --------------------------------------------------
def test_read_idx_plain_and_gzipped(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    plain, gz = tmp_path / "a-idx3-ubyte", tmp_path / "a-idx3-ubyte.gz"
    plain.write_bytes(idx_bytes(arr))
    gz.write_bytes(gzip.compress(idx_bytes(arr)))
    for p in (plain, gz):
        assert is_idx_file(p)
        np.testing.assert_array_equal(read_idx(p), arr)
    floats = np.linspace(0, 1, 8, dtype=">f4").reshape(2, 2, 2)
    (tmp_path / "f").write_bytes(idx_bytes(floats, 0x0D))
    np.testing.assert_allclose(read_idx(tmp_path / "f"), floats)


@pytest.mark.parametrize("damage,message", [
    (lambda b: b[:-5], "truncated IDX file (header says 4x28x28"),
    (lambda b: b[:10], "truncated IDX header"),
    (lambda b: b[:2], "truncated IDX file"),
    (lambda b: b"\x12\x34" + b[2:], "bad magic number 0x1234"),
    (lambda b: b[:2] + b"\x07" + b[3:], "bad magic number"),
    (lambda b: b + b"xyz", "3 unexpected bytes"),
])
def test_bad_idx_files_give_one_line_errors_naming_the_file(tmp_path, damage, message):
    p = tmp_path / "bad-idx3-ubyte"
    p.write_bytes(damage(idx_bytes(digits(4))))
    with pytest.raises(DataError) as e:
        read_idx(p)
    assert str(p) in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_damaged_gzip_and_label_files(tmp_path):
    gz = gzip.compress(idx_bytes(digits(4)))
    p = tmp_path / "cut-idx3-ubyte.gz"
    p.write_bytes(gz[:len(gz) // 2])
    with pytest.raises(DataError, match="damaged gzip file"):
        read_idx(p)
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(np.arange(10, dtype=np.uint8)))
    with pytest.raises(DataError, match="labels"):
        ImageDataset(labels, 32, 1)
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(DataError, match="neither an image folder"):
        ImageDataset(junk, 32, 1)


def test_idx_dataset_values_and_resizing(idx_file):
    raw = digits()
    ds = ImageDataset(idx_file, 28, 1)
    assert len(ds) == 16 and "16 gray images of 28x28 from IDX file" in ds.describe()
    item = ds[3]
    assert item["index"] == 3 and item["image"].shape == (1, 28, 28)
    np.testing.assert_allclose(item["image"][0].numpy(), raw[3] / 127.5 - 1, atol=1e-6)   # 0 -> -1, 255 -> 1
    big = ImageDataset(idx_file, 32, 1, low=0.0)
    x = big[0]["image"]
    assert x.shape == (1, 32, 32) and x.min() >= 0 and x.max() <= 1 and x.max() > 0.9
    rgb = ImageDataset(idx_file, 32, 3)
    assert rgb[0]["image"].shape == (3, 32, 32) and torch.equal(rgb[0]["image"][0], rgb[0]["image"][2])


def test_image_folder_is_recursive_center_cropped_and_gray_or_rgb(image_dir):
    ds = ImageDataset(image_dir, 16, 3)
    assert len(ds) == 10 and ds[0]["image"].shape == (3, 16, 16)
    assert ds.names[-1] == "b/c/9.png"
    gray = ImageDataset(image_dir, 16, 1)
    assert gray[1]["image"].shape == (1, 16, 16)
    # a wide image keeps its middle: left third red, middle green, right third blue
    arr = np.zeros((10, 30, 3), np.uint8)
    arr[:, :10, 0] = arr[:, 10:20, 1] = arr[:, 20:, 2] = 255
    out = fit_square(arr, 10, 3)
    assert out.shape == (10, 10, 3) and (out[..., 1] == 255).all() and (out[..., 0] == 0).all()


def test_bad_image_file_is_named_or_skipped(image_dir):
    bad = image_dir / "a" / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        ImageDataset(image_dir, 16, 3)
    ds = ImageDataset(image_dir, 16, 3, skip_bad=True)
    assert len(ds) == 10 and "1 bad file(s) skipped" in ds.describe()


@pytest.mark.skipif(not MNIST.exists(), reason="shared MNIST data not present")
def test_real_mnist_test_split():
    ds = ImageDataset(MNIST, 28, 1)
    assert len(ds) == 10_000 and ds.data.dtype == torch.uint8
    assert ds.data.float().mean().item() == pytest.approx(33.8, abs=1.0)   # MNIST's mean intensity ~ 0.13 * 255


# -- configuration --------------------------------------------------------------
def test_unconditional_defaults_leave_pix2pix_alone(idx_file, image_dir):
    c = make_config(images=str(idx_file))
    assert (c.model.kind, c.model.output_nc, c.model.image_size, c.train.batch_size) == ("dcgan", 1, 64, 32)
    assert (c.model.ngf, c.model.ndf, c.train.g_ema, c.train.epochs_decay) == (32, 32, 0.999, 0)
    c = make_config(images=str(idx_file), ngf=64, g_ema=0.0)                  # explicit settings win
    assert (c.model.ngf, c.model.ndf, c.train.g_ema) == (64, 32, 0.0)
    c = make_config(images=str(image_dir), kind="mlp")
    assert (c.model.output_nc, c.model.image_size, c.family.noise, c.train.batch_size) == (3, 28, "uniform", 64)
    assert (c.model.ngf, c.train.g_ema) == (64, 0.0)
    p = make_config(pairs="x")
    assert (p.model.kind, p.train.batch_size, p.train.epochs, p.train.epochs_decay, p.model.image_size) == \
        ("pix2pix", 1, 100, 100, 256)
    with pytest.raises(ConfigError, match="not --pairs"):
        families.check(make_config(images="x", pairs="y", kind="dcgan"))
    with pytest.raises(ConfigError, match="needs --images"):
        families.check(make_config(kind="mlp"))


# -- training ----------------------------------------------------------------------
def read_rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_tiny_dcgan_run_writes_checkpoints_samples_and_log(tmp_path, image_dir):
    run = tmp_path / "run"
    train(images=str(image_dir), kind="dcgan", image_size=32, output_nc=3, out=str(run), epochs=2,
          g_ema=0.9, **TINY)
    for name in ("config.json", "latest.pt", "model.pt", "losses.png", "samples/epoch_001.png",
                 "samples/epoch_002.png"):
        assert (run / name).is_file(), name
    grid = Image.open(run / "samples" / "epoch_002.png")
    assert grid.size == (8 * 34 + 2, 8 * 34 + 2)                   # 64 fixed-noise samples, 8x8
    rows = read_rows(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]                 # 10 images, batch 4 -> 2 steps/epoch
    for r in rows:
        assert {"D", "G_GAN", "D_real", "D_fake"} <= set(r) and 0 <= r["D_real"] <= 1
    G, cfg = load_generator(run)
    assert cfg.model.kind == "dcgan" and G(torch.randn(2, 100)).shape == (2, 3, 32, 32)


def test_d_steps_updates_g_every_kth_step(tmp_path, idx_file):
    run = tmp_path / "k2"
    train(images=str(idx_file), kind="mlp", out=str(run), max_steps=6, d_steps=2, **TINY)
    rows = read_rows(run)
    assert ["G_GAN" in r for r in rows] == [False, True] * 3
    assert all("D" in r for r in rows)


@pytest.mark.parametrize("objective", ["minimax", "lsgan", "hinge", "wgan-gp"])
def test_every_objective_trains_the_unconditional_path(tmp_path, idx_file, objective):
    run = tmp_path / objective
    train(images=str(idx_file), kind="mlp", out=str(run), max_steps=3, objective=objective, **TINY)
    rows = read_rows(run)
    assert len(rows) == 3 and all(math.isfinite(r["G_GAN"]) for r in rows)
    assert ("GP" in rows[0]) == (objective == "wgan-gp")


def state_of(run: Path) -> dict:
    return torch.load(run / "latest.pt", weights_only=True)["state"]


def test_resume_is_exact_for_the_unconditional_path(tmp_path, image_dir):
    common = dict(images=str(image_dir), kind="dcgan", image_size=32, output_nc=3, g_ema=0.9, d_steps=2,
                  save_every=3, **TINY)
    a, b = tmp_path / "a", tmp_path / "b"
    train(out=str(a), max_steps=7, **common)
    train(out=str(b), max_steps=3, **common)
    train(out=str(b), max_steps=7, resume=True)
    sa, sb = state_of(a), state_of(b)
    assert sa["step"] == sb["step"] == 7
    for part in ("G", "D"):
        for k in sa[part]:
            assert torch.equal(sa[part][k], sb[part][k]), (part, k)
    for k in sa["g_ema"]["model"]:
        assert torch.equal(sa["g_ema"]["model"][k], sb["g_ema"]["model"][k]), k
    strip = [{k: v for k, v in r.items() if k != "time"} for r in read_rows(a)]
    assert strip == [{k: v for k, v in r.items() if k != "time"} for r in read_rows(b)]


def test_resume_refuses_to_change_the_model(tmp_path, idx_file):
    run = tmp_path / "r"
    train(images=str(idx_file), kind="mlp", out=str(run), max_steps=2, **TINY)
    with pytest.raises(ConfigError, match="--z-dim"):
        train(out=str(run), resume=True, z_dim=10)


def test_trainer_uses_the_images_dataset(idx_file):
    cfg = make_config(images=str(idx_file), kind="mlp", out="unused", **TINY)
    ds = make_dataset(cfg)
    assert isinstance(ds, ImageDataset) and ds[0]["image"].shape == (1, 28, 28)
    sig = make_dataset(make_config(images=str(idx_file), kind="mlp", mlp_out="sigmoid"))
    assert sig[0]["image"].min() == 0                                    # sigmoid MLP trains on [0, 1]
    Trainer(cfg, dataset=ds)                                             # builds without touching disk


# -- sampling ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    data = root / "digits-idx3-ubyte"
    data.write_bytes(idx_bytes(digits(8)))
    run = root / "run"
    train(images=str(data), kind="dcgan", image_size=32, out=str(run), max_steps=3, **TINY)
    return run


def test_eval_samples_do_not_depend_on_the_batch(dcgan_run):
    s = Sampler.load(dcgan_run)
    a, b = s.sample(8, seed=5), s.sample(3, seed=5)
    assert a.shape == (8, 3, 32, 32) and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a[:3], b, atol=1e-5, rtol=0)
    assert not torch.allclose(s.sample(3, seed=6), b)
    torch.testing.assert_close(sample(dcgan_run, n=3, seed=5), b, atol=1e-5, rtol=0)


def test_recalibrated_batchnorm_matches_batch_statistics():
    cfg = make_config(images="x", kind="dcgan", image_size=32, ngf=4)
    G = families.get(cfg.model.kind)(cfg).G
    for m in G.modules():                             # stale running stats, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(3.0)
    z = torch.randn(512, 100, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        batch_stats = G.train()(z)
        stale = G.eval()(z)
        before = G.net[1].running_mean.clone()
        fresh = recalibrate_batchnorm(G, cfg, copy_first=True)(z)
    assert (fresh - batch_stats).abs().mean() < 0.2 * (stale - batch_stats).abs().mean()
    assert torch.equal(G.net[1].running_mean, before)     # copy_first left the original alone


def test_interpolation_count_and_endpoints(dcgan_run):
    s = Sampler.load(dcgan_run)
    walk = interpolate(s, 1, 2, steps=6)
    assert walk.shape == (6, 3, 32, 32)
    torch.testing.assert_close(walk[0], s.sample(1, seed=1)[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(walk[-1], s.sample(1, seed=2)[0], atol=1e-4, rtol=0)
    with pytest.raises(ValueError):
        s.interpolate(1, 2, steps=1)


def test_sample_cli_writes_files_grids_and_never_overwrites(dcgan_run, tmp_path, capsys):
    out = tmp_path / "many"
    assert main(["sample", str(dcgan_run), "--out", str(out), "--n", "5", "--seed", "3", "--device", "cpu"]) == 0
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"seed3_{i:04d}.png" for i in range(5)]
    assert Image.open(files[0]).size == (32, 32)
    grid = tmp_path / "grid.png"
    assert main(["sample", str(dcgan_run / "model.pt"), "--out", str(grid), "--grid", "--n", "16"]) == 0
    assert Image.open(grid).size == (4 * 34 + 2, 4 * 34 + 2)
    before = grid.read_bytes()
    assert main(["sample", str(dcgan_run), "--out", str(grid), "--grid", "--seed", "9"]) == 2
    assert "already exists" in capsys.readouterr().err and grid.read_bytes() == before
    walk = tmp_path / "walk"
    assert main(["sample", str(dcgan_run), "--out", str(walk), "--interpolate", "4", "7", "--steps", "5"]) == 0
    assert len(list(walk.glob("interp_4_7_*.png"))) == 5
    row = tmp_path / "walk.png"
    assert main(["sample", str(dcgan_run), "--out", str(row), "--grid", "--interpolate", "4", "7", "--steps", "5"]) == 0
    assert Image.open(row).size == (5 * 34 + 2, 34 + 2)
    assert main(["sample", str(dcgan_run), "--out", str(tmp_path / "one.png"), "--n", "3"]) == 2
    assert "names one file" in capsys.readouterr().err


def test_sample_cli_errors_are_one_line(tmp_path, capsys, ab_dir):
    assert main(["sample", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and err.count("\n") == 1
    run = tmp_path / "p2p"
    train(pairs=str(ab_dir), out=str(run), max_steps=1, load_size=36, crop_size=32, ngf=4, ndf=4, progress=False)
    assert main(["sample", str(run), "--out", str(tmp_path / "y")]) == 2
    assert "pix2pix" in capsys.readouterr().err


def test_train_cli_with_images(tmp_path, idx_file, capsys):
    run = tmp_path / "cli"
    assert main(["train", "--images", str(idx_file), "--model", "mlp", "--out", str(run), "--max-steps", "2",
                 "--batch-size", "4", "--no-progress", "--z-dim", "16", "--noise", "normal",
                 "--mlp-hidden", "32"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["model"]["kind"], cfg["model"]["z_dim"], cfg["model"]["noise"], cfg["model"]["mlp_hidden"]) == \
        ("mlp", 16, "normal", 32)
    assert main(["train", "--images", str(idx_file), "--model", "dcgan", "--size", "48",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "--size" in capsys.readouterr().err
    assert main(["train", "--pairs", "x", "--size", "64", "--out", str(tmp_path / "bad2")]) == 2
    assert "--crop-size" in capsys.readouterr().err
