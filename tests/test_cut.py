"""CUT and FastCUT (contrastive unpaired translation): networks, PatchNCE, settings, every sub-command."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from img2img import Translator, families, train
from img2img.checkpoint import load_checkpoint
from img2img.cli import main
from img2img.config import ConfigError
from img2img.nets import PatchDiscriminator, ResnetGenerator
from img2img.nets.patchnce import PatchHead, patch_nce, sample_places
from img2img.nets.resnet import encode, encoder_taps

from learning_cases import BLUE, RED, cut_colour_swap, shapes


def params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# -- networks and the loss -----------------------------------------------------------------
def test_encoder_taps_are_the_papers_five_layers():
    """Pixels, the two down-sampling stages, residual blocks 1 and 5 (the last one of fewer)."""
    for norm in ("instance", "none"):
        G = ResnetGenerator(3, 3, 8, 6, norm)
        taps = encoder_taps(G)
        assert [c for _, c in taps] == [3, 16, 32, 32, 32]
        feats = encode(G, torch.rand(2, 3, 32, 32), taps)
        assert [tuple(f.shape[1:]) for f in feats] == [(3, 32, 32), (16, 16, 16), (32, 8, 8), (32, 8, 8), (32, 8, 8)]
        blocks = [i for i, layer in enumerate(G.net) if type(layer).__name__ == "ResidualBlock"]
        assert [i for i, _ in taps[3:]] == [blocks[0], blocks[4]]
    assert encoder_taps(ResnetGenerator(3, 3, 8, 2))[-1][0] == encoder_taps(ResnetGenerator(3, 3, 8, 2))[-2][0] + 1


def test_parameter_counts():
    """CUT's G is one CycleGAN generator plus the head (two layers of 256 per tap); D one PatchGAN."""
    cfg = families.make_config(unpaired="x", kind="cut")
    fam = families.get("cut")
    G, D = fam.build_generator(cfg), fam.build_discriminator(cfg)
    assert params(G["net"]) == params(ResnetGenerator(3, 3, 64, 9, "instance"))          # 11.378 M
    head = sum(c * 256 + 256 + 256 * 256 + 256 for c in (3, 128, 256, 256, 256))
    assert params(G["head"]) == head == 560_384
    assert params(D) == params(PatchDiscriminator(3, 64, 3, "instance"))               # 2.765 M
    cyc = families.make_config(unpaired="x")
    cg, cd = families.meta_networks(cyc)
    assert params(G["net"]) * 2 == params(cg) and params(D) * 2 == params(cd)


def test_patch_nce_on_hand_made_features():
    """One-hot features: matching places give log(1 + (P-1)·e^(-1/τ)); a shuffle raises the loss to
    about 1/τ more; random unit features matched beat every shift of themselves."""
    P, tau = 8, 0.5                  # (at the default 0.07 the loss of a match is ~4e-6, below float32's resolution)
    k = torch.eye(P).unsqueeze(0)
    same = patch_nce(k, k, tau)
    assert same.item() == pytest.approx(math.log(1 + (P - 1) * math.exp(-1 / tau)), rel=1e-5)
    shuffled = patch_nce(k[:, torch.roll(torch.arange(P), 1)], k, tau)
    assert shuffled.item() == pytest.approx(1 / tau + math.log(1 + (P - 1) * math.exp(-1 / tau)), rel=1e-4)
    g = torch.Generator().manual_seed(0)
    f = torch.nn.functional.normalize(torch.randn(2, 64, 32, generator=g), dim=-1)
    matched = patch_nce(f, f, 0.07)
    assert all(matched < patch_nce(torch.roll(f, s, dims=1), f, 0.07) for s in range(1, 64, 7))
    q = f.clone().requires_grad_(True)
    kk = f.clone().requires_grad_(True)
    patch_nce(q, kk).backward()
    assert q.grad is not None and kk.grad is None                       # the keys are targets


def test_patch_head_samples_the_same_places_of_both_images():
    head = PatchHead([3, 16])
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 16, 4, 4)
    torch.manual_seed(0)
    places = sample_places([a, b], 10)
    assert [len(p) for p in places] == [10, 10] and len(set(places[0].tolist())) == 10
    assert len(sample_places([b], 256)[0]) == 16                        # all 16 places of a 4x4 map
    out = head([a, b], places)
    assert [tuple(o.shape) for o in out] == [(2, 10, 256), (2, 10, 256)]
    assert torch.allclose(out[0].norm(dim=-1), torch.ones(2, 10))


# -- settings -------------------------------------------------------------------------------
def test_cut_and_fastcut_defaults_and_their_refusals():
    cut = families.make_config(unpaired="x", kind="cut", crop_size=128)
    fast = families.make_config(unpaired="x", kind="fastcut")
    assert (cut.family.lambda_nce, cut.family.lambda_nce_idt, cut.family.nce_patches, cut.family.nce_tau) == \
        (1.0, 1.0, 256, 0.07)
    assert (fast.family.lambda_nce, fast.family.lambda_nce_idt) == (10.0, 0.0)
    assert (cut.model.netG, fast.model.netG, cut.model.norm, cut.train.objective) == \
        ("resnet6", "resnet9", "instance", "lsgan")
    assert families.make_config(unpaired="x").model.kind == "cyclegan"      # --unpaired alone stays CycleGAN
    for bad, match in ((dict(netG="unet"), "resnet9 or resnet6, not unet"),
                       (dict(val_split=0.2), "validation needs held-out pairs"),
                       (dict(output_nc=1), "as many input as output channels"),
                       (dict(direction="BtoA"), "swap the A/ and B/ folders"),
                       (dict(nce_patches=1), "nce-patches must be"),
                       (dict(nce_tau=0.0), "nce-tau must be")):
        with pytest.raises(ConfigError, match=match):
            families.check(families.make_config(unpaired="x", kind="cut", **bad), data=False)
    with pytest.raises(ConfigError, match="--lambda-nce is a setting of cut and fastcut, not of cyclegan"):
        families.make_config(unpaired="x", lambda_nce=2.0)


# -- a run through every sub-command ----------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cut")
    shapes(root / "u" / "A", RED, 4, 0)
    shapes(root / "u" / "B", BLUE, 3, 1)
    (root / "val" / "A").mkdir(parents=True)                # held-out pairs: red shape -> the same shape blue
    (root / "val" / "B").mkdir()
    for i, f in enumerate(sorted((root / "u" / "A").glob("*.png"))[:2]):
        a = np.asarray(Image.open(f)).copy()
        Image.fromarray(a).save(root / "val" / "A" / f"{i}.png")
        a[(a[:, :, 0] > 150) & (a[:, :, 2] < 100)] = BLUE
        Image.fromarray(a).save(root / "val" / "B" / f"{i}.png")
    return root


KW = dict(load_size=36, crop_size=32, ngf=4, ndf=4, progress=False)


@pytest.mark.parametrize("kind", ["cut", "fastcut"])
def test_a_run_validates_resumes_exactly_and_is_used_by_every_command(kind, data, tmp_path, capsys):
    run = train(unpaired=str(data / "u"), model=kind, out=str(tmp_path / "run"), max_steps=3, val=str(data / "val"),
                nce_patches=16, **KW)
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = {k for r in rows for k in r}
    assert {"D", "G_GAN", "NCE"} <= losses and (("NCE_Y" in losses) == (kind == "cut"))
    assert any("val_l1" in r for r in rows) and (run / "best.pt").exists() and (run / "index.html").exists()
    assert (run / "samples" / "epoch_001.png").exists()
    # resume is exact: 2 + 2 steps == 4 steps
    kw = dict(unpaired=str(data / "u"), model=kind, nce_patches=16, save_every=1, **KW)
    full = train(out=str(tmp_path / "full"), max_steps=4, **kw)
    part = train(out=str(tmp_path / "part"), max_steps=2, **kw)
    train(out=str(part), resume=True, max_steps=4, progress=False)
    a, b = (load_checkpoint(r / "latest.pt")["state"] for r in (full, part))
    for net in ("G", "D"):
        assert a[net].keys() == b[net].keys() and all(torch.equal(a[net][k], b[net][k]) for k in a[net])
    # translate, eval, export (any size, parity), int8
    assert main(["translate", str(run), str(data / "u" / "A"), str(tmp_path / "t"), "--no-progress"]) == 0
    assert len(list((tmp_path / "t").glob("*.png"))) == 4
    with pytest.raises(ConfigError, match="AtoB only"):
        Translator.load(run, device="cpu", direction="BtoA")
    assert main(["eval", str(run), "--pairs", str(data / "val"), "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "ev" / "results.json").read_text())["count"] == 2
    assert main(["export", str(run), str(tmp_path / "g.onnx"), "--exporter", "torchscript"]) == 0
    x = torch.rand(3, 37, 50)
    assert torch.allclose(Translator.load(tmp_path / "g.onnx")(x), Translator.load(run, device="cpu")(x), atol=1e-4)
    assert main(["export", str(run), str(tmp_path / "g8.onnx"), "--exporter", "torchscript", "--quantize", "int8",
                 "--calibration", str(data / "u"), "--min-psnr", "0"]) == 0
    assert Translator.load(tmp_path / "g8.onnx")(x).shape == (3, 37, 50)
    from img2img.serve import load_model
    assert list(load_model(run, device="cpu")) == ["AtoB"]


def test_unpaired_validation_is_refused_in_one_line(data, tmp_path, capsys):
    rc = main(["train", "--unpaired", str(data / "u"), "--model", "cut", "--val", str(data / "u"), "--out",
               str(tmp_path / "r"), "--max-steps", "1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "holds two domains, not pairs" in err[0]
    assert not (tmp_path / "r").exists()                       # refused before anything is written


def test_a_tiny_cut_learns_to_swap_red_for_blue_and_keeps_the_shape(tmp_path):
    """150 steps at lr 1e-3 (tests/learning_cases.py).  Margins measured by tools/learning_margins.py cut
    (tools/results/learning_margins.jsonl), seeds 0-1 under the AVX-512 and the AVX2 kernels on an AMD
    EPYC: IoU 0.32-0.57, white 0.91-0.98, blue 68-98; with lr 1e-9 (nothing learned): IoU 0.14,
    white 0.00 (blue 66: the untrained G's tint, so blue alone tells nothing)."""
    got = cut_colour_swap(tmp_path / "swap", seed=0)
    assert got["iou"] > 0.22, got          # the shape turned blue where the red shape was ...
    assert got["white"] > 0.6, got         # ... and the white background stayed white
    assert got["blue"] > 30, got
