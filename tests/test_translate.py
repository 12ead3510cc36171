"""Translation of folders and images with a trained generator (torch backend)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from img2img import Translator, translate_folder
from img2img.cli import main
from img2img.color import rgb_to_lab_net
from img2img.config import ConfigError
from img2img.families import make_config
from img2img.families.wrappers import RGBGenerator
from tiny_models import make_checkpoint, read, write_images

ODD_SIZES = [(37, 51), (20, 90), (64, 64), (101, 33), (5, 7), (32, 48)]


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("m") / "model.pt")


@pytest.mark.parametrize("policy", ["resize", "pad"])
def test_outputs_have_the_input_sizes_and_relative_paths(rgb_model, tmp_path, policy):
    files = write_images(tmp_path / "in", ODD_SIZES)
    summary = translate_folder(rgb_model, tmp_path / "in", tmp_path / "out", policy=policy, batch_size=4,
                               device="cpu", workers=1, progress=False)
    assert summary.ok and len(summary.translated) == len(files) and not summary.skipped
    for f in files:
        out = tmp_path / "out" / f.relative_to(tmp_path / "in")
        assert out.is_file(), out
        with Image.open(f) as a, Image.open(out) as b:
            assert b.size == a.size and b.mode == "RGB"
    # suffix and format options
    s2 = translate_folder(rgb_model, tmp_path / "in", tmp_path / "png", suffix="_fake", format="png",
                          device="cpu", workers=0, progress=False)
    assert sorted(p.relative_to(tmp_path / "png").as_posix() for p in s2.translated) == sorted(
        f.relative_to(tmp_path / "in").with_name(f.stem + "_fake.png").as_posix() for f in files)


def test_an_image_in_a_batch_of_8_gives_the_same_output_as_alone(rgb_model):
    tr = Translator.load(rgb_model, device="cpu", batch_size=8)
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x[3] = x[3] * 0.2 + 0.7                       # very different statistics from its neighbours
    together = tr(x)
    alone = torch.stack([tr(x[i]) for i in range(8)])
    assert together.shape == x.shape
    assert torch.allclose(together, alone, atol=1e-5), (together - alone).abs().max()
    # and the outputs do depend on the input (not a constant network)
    assert (together[0] - together[1]).abs().mean() > 1e-3


def test_batch_size_does_not_change_folder_outputs(rgb_model, tmp_path):
    files = write_images(tmp_path / "in", [(32, 32)] * 5 + [(40, 30)] * 4, exts=("png",))
    for bs in (1, 8):
        translate_folder(rgb_model, tmp_path / "in", tmp_path / f"out{bs}", batch_size=bs, policy="pad",
                         device="cpu", workers=0, progress=False)
    for f in files:
        rel = f.relative_to(tmp_path / "in")
        assert np.array_equal(read(tmp_path / "out1" / rel), read(tmp_path / "out8" / rel)), rel


def test_worker_processes_give_the_same_outputs_and_default_to_none_on_small_cpus(rgb_model, tmp_path, monkeypatch):
    import os

    from img2img.device import default_workers
    files = write_images(tmp_path / "in", [(32, 32)] * 6, exts=("png",))
    for w in (0, 2):
        translate_folder(rgb_model, tmp_path / "in", tmp_path / f"out{w}", batch_size=2, device="cpu",
                         workers=w, progress=False)
    for f in files:
        rel = f.relative_to(tmp_path / "in")
        assert np.array_equal(read(tmp_path / "out0" / rel), read(tmp_path / "out2" / rel)), rel
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert default_workers(torch.device("cpu")) == 0
    assert default_workers(torch.device("cuda")) == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert default_workers(torch.device("cpu")) == 2


def test_deterministic_unless_dropout_noise_is_asked_for(rgb_model):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    tr = Translator.load(rgb_model, device="cpu")
    assert torch.equal(tr(x), tr(x))
    noisy = Translator.load(rgb_model, device="cpu", dropout_noise=True, seed=0)
    a, b = noisy(x), noisy(x)
    assert (a - b).abs().max() > 1e-4                      # dropout is on: two runs differ
    again = Translator.load(rgb_model, device="cpu", dropout_noise=True, seed=0)(x)
    assert torch.equal(a, again)                           # ... reproducibly with the seed


def test_existing_outputs_are_kept_without_overwrite(rgb_model, tmp_path):
    write_images(tmp_path / "in", [(32, 32), (30, 20)], exts=("png",))
    out = tmp_path / "out" / "img0.png"
    out.parent.mkdir()
    out.write_bytes(b"keep me")
    s = translate_folder(rgb_model, tmp_path / "in", tmp_path / "out", device="cpu", workers=0, progress=False)
    assert out.read_bytes() == b"keep me"
    assert s.skipped == [out] and len(s.translated) == 1 and s.ok
    s = translate_folder(rgb_model, tmp_path / "in", tmp_path / "out", device="cpu", workers=0, progress=False,
                         overwrite=True)
    assert len(s.translated) == 2
    with Image.open(out) as im:
        assert im.size == (32, 32)


def test_refuses_to_write_into_the_input_folder(rgb_model, tmp_path):
    write_images(tmp_path / "in", [(32, 32)])
    before = sorted(p.name for p in (tmp_path / "in").rglob("*"))
    for target in (tmp_path / "in", tmp_path / "in" / "out"):
        with pytest.raises(ConfigError, match="input folder"):
            translate_folder(rgb_model, tmp_path / "in", target, device="cpu", progress=False)
    assert main(["translate", str(rgb_model), str(tmp_path / "in"), str(tmp_path / "in" / "x")]) == 2
    assert sorted(p.name for p in (tmp_path / "in").rglob("*")) == before


def test_broken_files_are_skipped_counted_and_make_the_exit_status_non_zero(rgb_model, tmp_path, capsys):
    write_images(tmp_path / "in", [(32, 32), (45, 17), (16, 16)])
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (tmp_path / "in" / "nested" / "empty.png").write_bytes(b"")
    (tmp_path / "in" / "readme.txt").write_text("not an image, ignored")
    rc = main(["translate", str(rgb_model), str(tmp_path / "in"), str(tmp_path / "out"), "--device", "cpu",
               "--batch-size", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "broken.jpg" in err and "empty.png" in err and "2 failed" in err and "3 image(s) translated" in err
    assert len(list((tmp_path / "out").rglob("*.*"))) == 3
    # without the broken files the same command succeeds
    (tmp_path / "in" / "broken.jpg").unlink()
    (tmp_path / "in" / "nested" / "empty.png").unlink()
    assert main(["translate", str(rgb_model), str(tmp_path / "in"), str(tmp_path / "out2"), "--no-progress"]) == 0


def test_single_image_pil_and_array_inputs(rgb_model, tmp_path):
    [f] = write_images(tmp_path, [(45, 23)], exts=("jpg",))
    assert main(["translate", str(rgb_model), str(f), str(tmp_path / "one.png"), "--no-progress"]) == 0
    with Image.open(tmp_path / "one.png") as im:
        assert im.size == (45, 23)
    tr = Translator.load(rgb_model, device="cpu")
    pil = tr(Image.open(f))
    assert isinstance(pil, Image.Image) and pil.size == (45, 23)
    arr = tr(np.asarray(Image.open(f)))
    assert arr.shape == (23, 45, 3) and arr.dtype == np.uint8
    assert np.abs(arr.astype(int) - np.asarray(pil).astype(int)).max() <= 1


def test_lab_wrapper_round_trips_rgb_and_colorization_keeps_the_input_lightness(tmp_path):
    # the color handling around G: with G = identity a Lab model gives back its RGB input
    cfg = make_config(pairs="x", crop_size=32, color="lab")
    x = torch.rand(2, 3, 16, 16) * 0.8 + 0.1
    assert torch.allclose(RGBGenerator(nn.Identity(), cfg)(x), x, atol=1e-4)

    lab = Translator.load(make_checkpoint(tmp_path / "lab.pt", color="lab"), device="cpu")
    y = lab(torch.rand(3, 3, 29, 41))
    assert y.shape == (3, 3, 29, 41) and y.min() >= 0 and y.max() <= 1

    # colorization: L in, ab out, recombined with the input's full-resolution L
    col = Translator.load(make_checkpoint(tmp_path / "col.pt", colorization=True), device="cpu", policy="resize")
    assert (col.cfg.model.input_nc, col.cfg.model.output_nc) == (1, 2)
    img = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(2)) * 0.5 + 0.25
    out = col(img)
    assert out.shape == img.shape
    L_in, L_out = rgb_to_lab_net(img)[:, 0], rgb_to_lab_net(out)[:, 0]
    assert (L_in - L_out).abs().mean() * 50 < 1.0          # under 1 L* unit: detail kept at full size
    assert (out[:, 0] - out[:, 1]).abs().mean() > 1e-3     # and it is colored, not gray


def test_noise_models_are_refused_with_one_line(tmp_path):
    pytest.importorskip("img2img.nets.dcgan")
    path = make_checkpoint(tmp_path / "dcgan.pt", kind="dcgan", image_size=32, output_nc=1)
    with pytest.raises(ConfigError, match="noise"):
        Translator.load(path, device="cpu")
