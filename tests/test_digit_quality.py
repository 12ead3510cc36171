"""tools/digit_quality.py: FID / KID, histogram, input checks, classifier cache.  Made-up data only."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


dq = _load("digit_quality")


def gaussian(n: int, d: int = 16, seed: int = 0, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(shift, scale, (n, d))


# -- FID -------------------------------------------------------------------------
def test_fid_of_a_set_with_itself_is_zero():
    f = gaussian(300)
    assert abs(dq.fid(f, f)) < 1e-6


def test_fid_of_a_shifted_set_is_the_squared_shift():
    f = gaussian(300)
    shift = np.zeros(16)
    shift[:4] = 0.5                                  # |shift|^2 = 1.0; same covariance
    assert dq.fid(f, f + shift) == pytest.approx(1.0, abs=1e-6)
    assert dq.fid(f + shift, f) == pytest.approx(dq.fid(f, f + shift), abs=1e-9)


def test_fid_grows_with_the_distance_between_distributions():
    a, b = gaussian(500, seed=1), gaussian(500, seed=2)
    same, near, far = dq.fid(a, b), dq.fid(a, gaussian(500, seed=3, shift=0.3)), dq.fid(a, gaussian(500, seed=4, shift=1))
    assert same < near < far
    wide = dq.fid(a, gaussian(500, seed=5, scale=2.0))          # covariance term alone: 16 * (2 - 1)^2 = 16
    assert wide == pytest.approx(16.0, rel=0.2)


def test_fid_of_a_gaussian_with_known_covariances():
    """Two large samples of N(0, I) and N(0, 4I) in d dims: FID -> d (2 - 1)^2 = d."""
    a = gaussian(20000, d=4, seed=0)
    b = gaussian(20000, d=4, seed=1, scale=2.0)
    assert dq.fid(a, b) == pytest.approx(4.0, rel=0.05)


# -- KID -------------------------------------------------------------------------
def kid_by_loops(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3            # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_the_unbiased_estimator_written_out():
    x, y = gaussian(12, d=5, seed=0), gaussian(9, d=5, seed=1, shift=0.4)
    assert dq.kid(x, y) == pytest.approx(kid_by_loops(x, y), rel=1e-9)


def test_kid_is_unbiased_near_zero_for_equal_distributions_and_positive_when_shifted():
    same = [dq.kid(gaussian(100, seed=2 * i), gaussian(100, seed=2 * i + 1)) for i in range(20)]
    shifted = dq.kid(gaussian(100, seed=100), gaussian(100, seed=101, shift=0.5))
    assert min(same) < 0 < max(same)                 # unbiased: the estimate straddles 0
    assert abs(np.mean(same)) < 0.1 * shifted
    assert shifted > 0


# -- histogram and scores ----------------------------------------------------------
def test_histogram_counts_and_largest_deviation():
    probs = np.zeros((20, 10))
    classes = [0] * 5 + [1] * 3 + list(range(2, 10)) + [2, 3, 4, 5]
    probs[np.arange(20), classes] = 1.0
    counts, dev = dq.histogram(probs)
    assert counts == [5, 3, 2, 2, 2, 2, 1, 1, 1, 1]
    assert dev == pytest.approx(150.0)                # 5 where 2 are expected


def test_to_28_takes_the_first_channel_and_resizes():
    x = torch.zeros(3, 3, 32, 32)
    x[:, 0] = 1.0
    y = dq.to_28(x)
    assert y.shape == (3, 1, 28, 28) and torch.allclose(y, torch.ones_like(y))


def test_at_size_28_is_the_digits_unchanged_and_32_a_round_trip():
    d = (np.random.default_rng(0).random((4, 28, 28)) * 255).astype(np.uint8)
    assert torch.equal(dq.at_size(d, 28), torch.from_numpy(d).float().div(255).unsqueeze(1))
    rt = dq.at_size(d, 32)
    assert rt.shape == (4, 1, 28, 28) and 0 < (rt - dq.at_size(d, 28)).abs().mean() < 0.5


# -- input checks ---------------------------------------------------------------------
def test_images_from_array_accepts_uint8_and_unit_floats():
    u8 = np.full((5, 32, 32), 255, np.uint8)
    assert torch.allclose(dq.images_from_array(u8, "x"), torch.ones(5, 1, 32, 32))
    f = torch.rand(5, 3, 32, 32)
    assert dq.images_from_array(f, "x").shape == (5, 3, 32, 32)


@pytest.mark.parametrize("array, message", [
    (np.zeros((5, 2, 8, 8), np.float32), "C = 1 or 3"),
    (np.zeros((8, 8), np.float32), "N x H x W"),
    (np.zeros((5, 8, 6), np.float32), "square"),
    (np.full((5, 8, 8), np.nan, np.float32), "NaN"),
    (np.full((5, 8, 8), -0.5, np.float32), "(x + 1) / 2"),
    (np.full((5, 8, 8), 3.0, np.float32), "must be in [0, 1]"),
    (np.zeros((5, 8, 8), np.int32), "uint8"),
])
def test_images_from_array_refuses_bad_arrays_in_one_line(array, message):
    with pytest.raises(dq.QualityError) as e:
        dq.images_from_array(array, "s.npz")
    assert message in str(e.value) and str(e.value).startswith("s.npz:") and "\n" not in str(e.value)


def test_load_images_reads_npz_and_pt_files(tmp_path):
    imgs = (np.random.default_rng(0).random((6, 32, 32)) * 255).astype(np.uint8)
    np.savez(tmp_path / "a.npz", images=imgs)
    x, size = dq.load_images(tmp_path / "a.npz", 4)
    assert x.shape == (4, 1, 28, 28) and size == 32
    torch.save({"images": torch.rand(5, 1, 28, 28)}, tmp_path / "b.pt")
    x, size = dq.load_images(tmp_path / "b.pt", 5)
    assert x.shape == (5, 1, 28, 28) and size == 28


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "no such file"),
    (lambda p: np.savez(p, a=np.zeros((3, 8, 8)), b=np.zeros(3)), "expected an array named 'images'"),
    (lambda p: np.savez(p, images=np.zeros((3, 8, 8), np.uint8)), "holds 3 images, 4 asked"),
    (lambda p: p.write_bytes(b"not a zip file"), "not a readable .npz"),
])
def test_load_images_errors_name_the_file(tmp_path, setup, message):
    p = tmp_path / "s.npz"
    setup(p)
    with pytest.raises(dq.QualityError) as e:
        dq.load_images(p, 4)
    assert message in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value)


def test_cli_gives_one_line_errors(tmp_path, capsys):
    assert dq.main([str(tmp_path / "x.npz"), "--mnist", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("digit_quality: error:") and "t10k-images-idx3-ubyte" in err[0]
    assert dq.main(["--mnist", str(tmp_path)]) == 2
    assert "nothing to score" in capsys.readouterr().err


# -- the classifier --------------------------------------------------------------------
def toy_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 uint8 images whose class (0-9) is the row band a bright bar sits in."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    imgs = np.zeros((n, 28, 28), np.uint8)
    for i, c in enumerate(labels):
        top = 2 + 2 * c
        imgs[i, top:top + 3, 4 + rng.integers(0, 4):20 + rng.integers(0, 4)] = 255
    return imgs, labels.astype(np.int64)


def test_classifier_training_is_deterministic_and_learns():
    imgs, labels = toy_digits(256)
    x, y = dq.as_unit(imgs), torch.from_numpy(labels)
    a = dq.train_classifier(x, y, epochs=2, log=lambda s: None)
    b = dq.train_classifier(x, y, epochs=2, log=lambda s: None)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    test_x, test_y = toy_digits(200, seed=1)
    with torch.no_grad():
        acc = (a(dq.as_unit(test_x)).argmax(1).numpy() == test_y).mean()
    assert acc > 0.5                                  # 10 classes: chance is 0.1


def test_classifier_is_cached_and_reloaded(tmp_path, monkeypatch):
    monkeypatch.setattr(dq, "N_TRAIN", 64)
    imgs, labels = toy_digits(64)
    calls = []
    real_train = dq.train_classifier
    monkeypatch.setattr(dq, "train_classifier", lambda *a, **k: calls.append(1) or real_train(*a, epochs=1, **k))
    a = dq.load_classifier(imgs, labels, tmp_path, log=lambda s: None)
    files = list(tmp_path.glob("digit_classifier_*.pt"))
    assert len(files) == 1 and len(calls) == 1
    b = dq.load_classifier(imgs, labels, tmp_path, log=lambda s: None)
    assert len(calls) == 1                            # loaded, not trained again
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    files[0].write_bytes(b"garbage")                  # a damaged cache file is replaced
    dq.load_classifier(imgs, labels, tmp_path, log=lambda s: None)
    assert len(calls) == 2


def test_yardstick_scores_real_like_samples_better_than_noise(monkeypatch):
    monkeypatch.setattr(dq, "HELD_OUT", (200, 400))
    imgs, labels = toy_digits(400)
    net = dq.train_classifier(dq.as_unit(imgs[:200]), torch.from_numpy(labels[:200]), epochs=2, log=lambda s: None)
    ys = dq.Yardstick(net, imgs, labels)
    real = ys.score(dq.as_unit(toy_digits(200, seed=5)[0]))
    noise = ys.score(torch.rand(200, 1, 28, 28))
    assert real["fid"] < noise["fid"] and real["kid"] < noise["kid"]
    assert real["hist_dev"] < noise["hist_dev"] and sum(real["histogram"]) == 200
