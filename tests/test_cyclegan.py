"""CycleGAN (unpaired translation) and the generator / discriminator / norm choices."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from img2img import Translator, families, train
from img2img.checkpoint import load_checkpoint
from img2img.cli import main
from img2img.config import ConfigError
from img2img.data.io import DataError
from img2img.data.unpaired import UnpairedDataset
from img2img.families.cyclegan import ImagePool
from img2img.nets import PatchDiscriminator, PixelDiscriminator, ResnetGenerator, UNetGenerator

from learning_cases import BLUE, RED, cyclegan_colour_swap, shapes


def params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# -- networks ----------------------------------------------------------------------------
def test_parameter_counts_match_the_published_figures():
    """As printed by the PyTorch CycleGAN/pix2pix code for its default networks (ngf = ndf = 64)."""
    assert round(params(ResnetGenerator(3, 3, 64, 9, "instance")) / 1e6, 3) == 11.378    # CycleGAN G
    assert round(params(ResnetGenerator(3, 3, 64, 6, "instance")) / 1e6, 3) == 7.838     # resnet_6blocks
    assert round(params(PatchDiscriminator(3, 64, 3, "instance")) / 1e6, 3) == 2.765     # CycleGAN D
    assert round(params(UNetGenerator(3, 3, 64, 8)) / 1e6, 3) == 54.414                  # pix2pix G
    assert round(params(PatchDiscriminator(6, 64, 3, "batch")) / 1e6, 3) == 2.769        # pix2pix D


@pytest.mark.parametrize("blocks", [6, 9])
def test_resnet_generator_shapes_and_layers(blocks):
    G = ResnetGenerator(3, 1, 8, blocks, "instance")
    x = torch.rand(2, 3, 36, 44) * 2 - 1
    y = G(x)
    assert y.shape == (2, 1, 36, 44) and y.abs().max() <= 1
    assert sum(isinstance(m, torch.nn.ReflectionPad2d) for m in G.modules()) == 2 + 2 * blocks
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules()) == 2


def test_norm_and_discriminator_choices():
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in UNetGenerator(3, 3, 8, 5, norm="instance").modules())
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in UNetGenerator(3, 3, 8, 5, norm="instance").modules())
    plain = UNetGenerator(3, 3, 8, 5, norm="none")
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)) for m in plain.modules())
    assert plain(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    assert PixelDiscriminator(6, 8)(torch.rand(2, 6, 20, 24)).shape == (2, 1, 20, 24)       # one logit per pixel
    assert PatchDiscriminator(6, 8, 2)(torch.rand(1, 6, 64, 64)).shape == (1, 1, 14, 14)


# -- data ----------------------------------------------------------------------------------
def test_unpaired_data_pairs_domains_afresh_each_epoch(tmp_path):
    shapes(tmp_path / "d" / "trainA", RED, 5, 0)
    shapes(tmp_path / "d" / "trainB", BLUE, 3, 1)                 # counts differ, names differ
    ds = UnpairedDataset(tmp_path / "d", load_size=36, crop_size=32, seed=3)
    assert len(ds) == 5 and "5 A and 3 B" in ds.describe()
    item = ds[4]
    assert item["A"].shape == item["B"].shape == (3, 32, 32) and item["A"].min() >= -1
    partners = [[ds.partner(i) for i in range(5)] for ds.epoch in range(4)]
    assert all(0 <= p < 3 for row in partners for p in row)
    assert len({tuple(r) for r in partners}) > 1                  # a new pairing each epoch ...
    ds.epoch = 2
    again = UnpairedDataset(tmp_path / "d", load_size=36, crop_size=32, seed=3)
    again.epoch = 2
    assert torch.equal(ds[1]["B"], again[1]["B"])                 # ... reproducible from the seed


def test_unpaired_data_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="A/ and B/"):
        UnpairedDataset(tmp_path)
    shapes(tmp_path / "A", RED, 2, 0)
    (tmp_path / "B").mkdir()
    with pytest.raises(DataError, match="no usable images"):
        UnpairedDataset(tmp_path)
    (tmp_path / "B" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="bad.png"):
        UnpairedDataset(tmp_path)


def test_image_pool_keeps_a_history_and_resumes():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)                  # filling up: the images themselves
    later = torch.arange(10.0, 18.0).view(8, 1, 1, 1)
    got = pool.query(later).flatten().tolist()
    assert any(v < 4 for v in got) and any(v >= 10 for v in got)  # older images mixed in
    state = pool.state_dict()
    copy = ImagePool(4)
    copy.load_state_dict(state)
    rng = torch.get_rng_state()
    a = pool.query(later)
    torch.set_rng_state(rng)
    assert torch.equal(copy.query(later), a)
    assert torch.equal(ImagePool(0).query(later), later)          # size 0: no history


# -- configuration -------------------------------------------------------------------------
def test_cyclegan_defaults_and_rules():
    c = families.make_config(unpaired="x")
    assert (c.model.kind, c.model.netG, c.model.norm, c.train.objective, c.model.dropout) == \
        ("cyclegan", "resnet9", "instance", "lsgan", 0.0)
    assert families.make_config(unpaired="x", crop_size=128, load_size=143).model.netG == "resnet6"
    assert families.make_config(pairs="x").model.netG == "unet"
    with pytest.raises(ConfigError, match="multiple of 4"):
        families.check(families.make_config(unpaired="x", crop_size=30, load_size=32))
    with pytest.raises(ConfigError, match="identity"):
        families.check(families.make_config(unpaired="x", output_nc=1))
    families.check(families.make_config(unpaired="x", output_nc=1, lambda_identity=0))
    with pytest.raises(ConfigError, match="--direction"):
        families.check(families.make_config(unpaired="x", direction="BtoA"))
    with pytest.raises(ConfigError, match="not --pairs"):
        families.check(families.make_config(unpaired="x", pairs="y", kind="cyclegan"))


# -- learning ------------------------------------------------------------------------------
def test_a_tiny_cyclegan_learns_to_swap_red_for_blue_and_keeps_the_shape(tmp_path):
    """150 steps at lr 1e-3 (tests/learning_cases.py).  Margins measured by tools/learning_margins.py
    (tools/results/learning_margins.jsonl), seeds 0-3 under the AVX-512 and the AVX2 kernels on an AMD
    EPYC: blue 117-183, IoU 0.41-0.73 (mean over the 6 test shapes), white 0.95-0.99, red_back
    138-216; with lr 1e-9 (nothing learned): blue 12, IoU 0.11, white 0.00, red_back -3."""
    got = cyclegan_colour_swap(tmp_path / "swap", seed=0)
    cfg = load_checkpoint(Path(got["run"]) / "model.pt")["config"]["model"]
    assert (cfg["netG"], cfg["norm"]) == ("resnet6", "instance")
    assert got["blue"] > 60, got           # the shape turned blue ...
    assert got["iou"] > 0.25, got          # ... where the red shape was ...
    assert got["white"] > 0.9, got         # ... and the white background stayed white
    assert got["red_back"] > 70, got       # B -> A turns a blue shape red


def test_cyclegan_resume_is_exact_including_the_pools(tmp_path):
    shapes(tmp_path / "data" / "A", RED, 4, 0)
    shapes(tmp_path / "data" / "B", BLUE, 3, 1)
    kw = dict(unpaired=str(tmp_path / "data"), load_size=36, crop_size=32, ngf=4, ndf=4, pool_size=3,
              progress=False, save_every=1)
    full = train(out=str(tmp_path / "full"), max_steps=7, **kw)
    part = train(out=str(tmp_path / "part"), max_steps=4, **kw)
    train(out=str(part), resume=True, max_steps=7, progress=False)
    a, b = (load_checkpoint(r / "latest.pt")["state"] for r in (full, part))
    for net in ("G", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])
    pa, pb = a["family"]["pools"]["A"]["images"], b["family"]["pools"]["A"]["images"]
    assert len(pa) == 3 and all(torch.equal(x, y) for x, y in zip(pa, pb))


# -- using a model -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cyc_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cyc")
    shapes(root / "data" / "A", RED, 3, 0)
    shapes(root / "data" / "B", BLUE, 3, 1)
    return train(unpaired=str(root / "data"), out=str(root / "run"), load_size=36, crop_size=32, ngf=4, ndf=4,
                 max_steps=2, progress=False)


def test_translate_export_and_eval_pick_a_direction(cyc_run, tmp_path, capsys):
    data = cyc_run.parent / "data"
    assert main(["translate", str(cyc_run), str(data / "B"), str(tmp_path / "ba"), "--direction", "BtoA",
                 "--no-progress"]) == 0
    assert len(list((tmp_path / "ba").glob("*.png"))) == 3
    torch_ba = Translator.load(cyc_run, device="cpu", direction="BtoA")
    torch_ab = Translator.load(cyc_run, device="cpu")
    x = torch.rand(3, 40, 28)
    assert not torch.allclose(torch_ab(x), torch_ba(x))           # two different generators
    assert main(["export", str(cyc_run), str(tmp_path / "ba.onnx"), "--direction", "BtoA",
                 "--exporter", "torchscript"]) == 0
    onnx_ba = Translator.load(tmp_path / "ba.onnx", device="cpu")
    assert onnx_ba.direction == "BtoA"
    assert torch.allclose(onnx_ba(x), torch_ba(x), atol=1e-4)
    with pytest.raises(ConfigError, match="BtoA only"):
        Translator.load(tmp_path / "ba.onnx", direction="AtoB")
    # eval on paired test data: B -> A with the B->A generator
    pairs = tmp_path / "pairs"
    for sub, (src, dst) in (("A", ("B", "A")),):
        (pairs / "A").mkdir(parents=True)
        (pairs / "B").mkdir()
        for i, f in enumerate(sorted((data / "B").glob("*.png"))):
            Image.open(f).save(pairs / "B" / f"{i}.png")
            Image.open(sorted((data / "A").glob("*.png"))[i]).save(pairs / "A" / f"{i}.png")
    assert main(["eval", str(cyc_run), "--pairs", str(pairs), "--out", str(tmp_path / "ev"), "--direction", "BtoA",
                 "--no-progress"]) == 0
    import json
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["direction"] == "BtoA" and res["count"] == 3


def test_a_pix2pix_model_translates_its_own_direction_only(tmp_path):
    from tiny_models import make_checkpoint
    ckpt = make_checkpoint(tmp_path / "p.pt", direction="BtoA")
    assert Translator.load(ckpt, device="cpu").direction == "BtoA"
    with pytest.raises(ConfigError, match="BtoA only"):
        Translator.load(ckpt, device="cpu", direction="AtoB")


@pytest.mark.parametrize("settings", [dict(netG="resnet6"), dict(netD="pixel"), dict(netD="nlayers", d_layers=2),
                                      dict(norm="instance"), dict(norm="none", netG="resnet6")])
def test_pix2pix_trains_with_each_network_choice(settings, tmp_path):
    from conftest import write_ab
    run = train(pairs=str(write_ab(tmp_path / "p", n=2)), out=str(tmp_path / "run"), load_size=36, crop_size=32,
                ngf=4, ndf=4, max_steps=2, progress=False, **settings)
    cfg = load_checkpoint(run / "model.pt")["config"]["model"]
    assert all(cfg[k] == v for k, v in settings.items())
    assert Translator.load(run, device="cpu")(torch.rand(3, 30, 50)).shape == (3, 30, 50)


def test_cli_unpaired_training_and_its_errors(tmp_path, capsys):
    shapes(tmp_path / "d" / "A", RED, 2, 0)
    shapes(tmp_path / "d" / "B", BLUE, 2, 1)
    rc = main(["train", "--unpaired", str(tmp_path / "d"), "--out", str(tmp_path / "r"), "--load-size", "36",
               "--crop-size", "32", "--ngf", "4", "--ndf", "4", "--max-steps", "1", "--no-progress"])
    assert rc == 0 and (tmp_path / "r" / "samples" / "epoch_001.png").exists()
    with Image.open(tmp_path / "r" / "samples" / "epoch_001.png") as grid:
        assert grid.size[1] > grid.size[0]                       # rows of A and of B images, 3 columns
    capsys.readouterr()
    rc = main(["train", "--unpaired", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r2"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "nowhere" in err[0]


def test_data_split_unpaired_splits_each_domain_on_its_own(tmp_path, capsys):
    shapes(tmp_path / "d" / "trainA", RED, 10, 0)
    shapes(tmp_path / "d" / "trainB", BLUE, 5, 1)
    assert main(["data", "split", str(tmp_path / "d"), str(tmp_path / "s"), "--ratios", "0.8", "0.2", "--unpaired",
                 "--no-progress"]) == 0
    counts = {f"{part}/{side}": len(list((tmp_path / "s" / part / side).glob("*.png")))
              for part in ("train", "val") for side in "AB"}
    assert counts == {"train/A": 8, "train/B": 4, "val/A": 2, "val/B": 1}
    assert UnpairedDataset(tmp_path / "s" / "train", load_size=36, crop_size=32).describe().startswith("8 A and 4 B")
