"""Training you can steer: validation while training and best.pt, TensorBoard, the run page,
the loss plot, the progress bar, --profile and --keep-every."""
from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, write_a_b, write_ab
from img2img import Translator, evaluate, families, train
from img2img.checkpoint import load_checkpoint
from img2img.cli import main
from img2img.config import ConfigError
from img2img.data.split import held_out
from img2img.data.io import DataError
from img2img.data.paired import PairedDataset
from img2img.metrics import pair_metrics
from img2img.gan.monitor import epochs_label, planned_steps
from img2img.inference import load_generator
from img2img.report import best_row, loss_plot, read_log, val_rows


def vals(run: Path) -> list[dict]:
    return val_rows(read_log(run / "log.jsonl"))


# -- the split --------------------------------------------------------------------------------
def test_held_out_names_depend_on_names_and_seed_only():
    names = [f"img{i:03d}.jpg" for i in range(100)]
    out = held_out(names, 0.2, seed=0)
    assert len(out) == 20 and out <= set(names)
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    assert held_out(shuffled, 0.2, seed=0) == out                    # order of discovery does not matter
    assert held_out(names, 0.2, seed=1) != out                       # the seed does
    assert held_out(names + ["new.jpg"], 0.2, seed=0) - {"new.jpg"} <= out | set(names)
    assert len(held_out(names[:3], 0.01, 0)) == 1 and len(held_out(names[:3], 0.99, 0)) == 2   # >= 1, never all
    with pytest.raises(DataError, match="at least 2 files"):
        held_out(names[:1], 0.5, 0)


def test_train_and_val_parts_of_a_folder_are_disjoint_and_complete(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=10)
    kw = dict(load_size=32, crop_size=32, holdout=0.3, seed=4)
    train_names = {p.name for p in PairedDataset(pairs, part="train", **kw).pairs}
    val_names = {p.name for p in PairedDataset(pairs, part="val", **kw).pairs}
    assert len(val_names) == 3 and not train_names & val_names
    assert train_names | val_names == {f"{i}.png" for i in range(10)}
    cfg = families.make_config(pairs=str(pairs), val_split=0.3, seed=4, **TINY)
    assert {p.name for p in families.make_dataset(cfg).pairs} == train_names     # what the trainer trains on


# -- validation, best.pt, resume -----------------------------------------------------------------
def test_val_split_run_scores_the_held_out_pairs_exactly_as_eval_does(tmp_path, capsys):
    pairs = write_ab(tmp_path / "pairs", n=8)
    run = train(pairs=str(pairs), out=str(tmp_path / "run"), epochs=3, epochs_decay=1, val_split=0.25, seed=2,
                **TINY)
    rows = vals(run)
    assert [r["step"] for r in rows] == [6, 12, 18, 24]                          # 6 training pairs: every epoch
    assert all(r["val_count"] == 2 and r["val_seconds"] >= 0 for r in rows)
    best = best_row(read_log(run / "log.jsonl"), "l1")
    assert best["val_l1"] == min(r["val_l1"] for r in rows)
    ck = load_checkpoint(run / "best.pt")
    assert ck["state"]["step"] == best["step"] and "opt_g" not in ck["state"]          # generator only
    assert ck["state"]["best"]["value"] == pytest.approx(best["val_l1"], abs=1e-6)
    assert load_checkpoint(run / "latest.pt")["state"]["best"]["step"] == best["step"]
    # `img2img eval` of best.pt on a folder of the held-out pairs gives the logged figures
    held = held_out([f"{i}.png" for i in range(8)], 0.25, seed=2)
    (tmp_path / "held").mkdir()
    for name in held:
        shutil.copy(pairs / name, tmp_path / "held" / name)
    res = evaluate(run / "best.pt", tmp_path / "held", tmp_path / "eval", device="cpu", progress=False)
    for k in ("l1", "psnr", "ssim"):
        assert res[k] == pytest.approx(best[f"val_{k}"], rel=1e-5, abs=1e-6), k
    # best.pt is a model file like model.pt: translate and export load it
    assert Translator.load(run / "best.pt", device="cpu")(torch.rand(3, 40, 30)).shape == (3, 40, 30)
    # --resume holds the same pairs out (the split is in the stored config) and goes on scoring them
    capsys.readouterr()
    train(out=str(run), resume=True, epochs=4)
    assert "6 pairs (AB layout)" in capsys.readouterr().err
    assert [(r["step"], r["val_count"]) for r in vals(run)][-2:] == [(24, 2), (30, 2)]


def test_best_pt_follows_the_metric_and_resume_keeps_the_best(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=8)
    val = write_ab(tmp_path / "val", n=3, seed=5)
    common = dict(pairs=str(pairs), epochs=4, epochs_decay=2, seed=3, **TINY)
    run = train(out=str(tmp_path / "run"), val=str(val), best_by="psnr", max_steps=16, **common)
    first = load_checkpoint(run / "latest.pt")["state"]["best"]
    assert first["by"] == "psnr" and first["value"] == max(r["val_psnr"] for r in vals(run))
    mtime = (run / "best.pt").stat().st_mtime_ns
    run = train(out=str(run), resume=True, max_steps=None, val_every=4)
    rows = vals(run)
    assert [r["step"] for r in rows] == [8, 16, 20, 24, 28, 32, 36, 40, 44, 48]   # epochs, then every 4 steps
    best = load_checkpoint(run / "latest.pt")["state"]["best"]
    top = max(rows, key=lambda r: (r["val_psnr"], -r["step"]))
    assert (best["step"], best["value"]) == (top["step"], pytest.approx(top["val_psnr"], abs=1e-6))
    ck = load_checkpoint(run / "best.pt")["state"]
    assert ck["step"] == top["step"]
    assert ((run / "best.pt").stat().st_mtime_ns == mtime) == (top["step"] <= 16)   # rewritten only if beaten


def test_validation_does_not_change_the_training(tmp_path):
    """Same weights with and without --val: validation uses no random numbers and no training state."""
    pairs = write_ab(tmp_path / "pairs", n=4)
    val = write_ab(tmp_path / "val", n=2, seed=9)
    common = dict(pairs=str(pairs), epochs=2, epochs_decay=1, seed=1, **TINY)
    a = load_checkpoint(train(out=str(tmp_path / "a"), **common) / "latest.pt")["state"]
    b = load_checkpoint(train(out=str(tmp_path / "b"), val=str(val), val_every=3, **common) / "latest.pt")["state"]
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    assert a["best"] is None and b["best"] is not None


def test_cyclegan_validation_is_the_cycle_reconstruction_of_held_out_images(tmp_path):
    from test_cyclegan import BLUE, RED, shapes
    shapes(tmp_path / "data" / "A", RED, 6, seed=0)
    shapes(tmp_path / "data" / "B", BLUE, 6, seed=1)
    run = train(unpaired=str(tmp_path / "data"), out=str(tmp_path / "run"), max_steps=8, val_split=0.34, seed=0,
                load_size=32, crop_size=32, ngf=4, ndf=4, progress=False)
    row = vals(run)[-1]
    assert row["val_count"] == 4 and {"val_A_l1", "val_B_l1", "val_A_ssim"} <= set(row)
    assert row["val_l1"] == pytest.approx((row["val_A_l1"] + row["val_B_l1"]) / 2, abs=1e-6)
    # by hand: G_B(G_A(a)) vs a through the saved model, at the model's size
    ab = Translator.load(run / "model.pt", device="cpu", direction="AtoB")
    ba = Translator.load(run / "model.pt", device="cpu", direction="BtoA")
    held = held_out([f"{RED[0]}_{i}.png" for i in range(6)], 0.34, seed=0)
    l1s = []
    for name in sorted(held):
        a = torch.from_numpy(np.array(Image.open(tmp_path / "data" / "A" / name).convert("RGB"))).permute(2, 0, 1) / 255
        l1s.append(pair_metrics(ba.translate_tensors(ab.translate_tensors([a]))[0], a)["l1"])
    assert row["val_A_l1"] == pytest.approx(float(np.mean(l1s)), rel=1e-5)


def test_cyclegan_validation_scores_held_out_pairs_both_ways_as_eval_does(tmp_path):
    """--val with pairs (AB files here): G_A(a) vs b and G_B(b) vs a, the figures of `img2img eval
    --direction AtoB / BtoA` on the same folder."""
    train_dir = write_a_b(tmp_path / "data", n=6)                  # A/ and B/: trained on as two domains
    val = write_ab(tmp_path / "val", n=3, seed=7)
    run = train(unpaired=str(train_dir), val=str(val), out=str(tmp_path / "run"), max_steps=6, val_every=3,
                load_size=32, crop_size=32, ngf=4, ndf=4, progress=False)
    rows = vals(run)
    assert [r["step"] for r in rows] == [3, 6] and all(r["val_count"] == 6 for r in rows)   # 3 pairs, 2 ways
    row = rows[-1]
    assert "val_A_l1" not in row
    assert row["val_l1"] == pytest.approx((row["val_AtoB_l1"] + row["val_BtoA_l1"]) / 2, abs=1e-6)
    best = load_checkpoint(run / "best.pt")["state"]["step"]
    for way in ("AtoB", "BtoA"):
        res = evaluate(run / "best.pt", val, tmp_path / f"eval_{way}", direction=way, device="cpu", progress=False)
        scored = next(r for r in rows if r["step"] == best)
        for k in ("l1", "psnr", "ssim"):
            assert res[k] == pytest.approx(scored[f"val_{way}_{k}"], rel=1e-5, abs=1e-6), (way, k)
    page = (run / "index.html").read_text()
    assert "L1 AtoB" in page and "L1 BtoA" in page and "scored both ways" in page


def test_cyclegan_validation_folders_pairs_or_domains(tmp_path):
    from img2img.data.holdout import holds_pairs
    assert holds_pairs(write_ab(tmp_path / "ab", n=2)) and holds_pairs(write_a_b(tmp_path / "a_b", n=2))
    odd = write_a_b(tmp_path / "odd", n=2)
    (odd / "B" / "img1.jpg").rename(odd / "B" / "other.jpg")
    assert not holds_pairs(odd)                                      # names do not match: two domains
    h2z = tmp_path / "h2z"                                           # CycleGAN's own layout
    for sub, seed in (("trainA", 0), ("trainB", 1), ("testA", 2), ("testB", 3)):
        write_ab(h2z / sub, n=3 if sub.startswith("train") else 2, seed=seed)
    assert not holds_pairs(h2z)
    common = dict(max_steps=2, load_size=32, crop_size=32, ngf=4, ndf=4, progress=False)
    # --val naming the training folder: its testA/ and testB/ are scored (cycle), trainA/ trainB/ trained on
    run = train(unpaired=str(h2z), val=str(h2z), out=str(tmp_path / "run"), **common)
    row = vals(run)[-1]
    assert row["val_count"] == 4 and {"val_A_l1", "val_B_l1"} <= set(row)
    # ... but not when the folder holds nothing else
    with pytest.raises(ConfigError, match="are the training images themselves"):
        train(unpaired=str(odd), val=str(odd), out=str(tmp_path / "r2"), **common)
    assert not (tmp_path / "r2").exists()
    run = train(unpaired=str(h2z), val=str(odd), out=str(tmp_path / "r3"), **common)
    assert vals(run)[-1]["val_count"] == 4                          # odd: 2 A + 2 B images, each a cycle


def test_validation_settings_are_checked_in_one_line(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=2)
    bad = [(dict(val_split=1.0), r"val-split must be a finite number in \[0, 1\)"), (dict(val_split=-0.1), "val-split"),
           (dict(val=str(pairs), val_split=0.5), "not both"), (dict(val=str(pairs)), "training folder itself"),
           (dict(val_every=5), "needs validation data"), (dict(best_by="fid"), "best-by must be one of"),
           (dict(keep_every=-1), "keep-every must be between 0"), (dict(profile=-2), "profile must be between 0")]
    for settings, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            train(pairs=str(pairs), out=str(tmp_path / "run"), max_steps=1, **{**TINY, **settings})
    img = tmp_path / "imgs"
    img.mkdir()
    for i in range(3):
        Image.new("RGB", (32, 32), (80 * i, 0, 0)).save(img / f"{i}.png")
    with pytest.raises(ConfigError, match="dcgan has no validation.*pix2pix"):
        train(images=str(img), out=str(tmp_path / "dc"), val_split=0.3, max_steps=1, progress=False)
    with pytest.raises(ConfigError, match="mlp has no validation"):
        train(kind="mlp", images=str(img), out=str(tmp_path / "mlp"), val=str(pairs), max_steps=1, progress=False)
    one = write_ab(tmp_path / "one", n=1)
    with pytest.raises(DataError, match="at least 2 files"):
        train(pairs=str(one), out=str(tmp_path / "r1"), val_split=0.5, max_steps=1, **TINY)
    assert not (tmp_path / "run").exists() and not (tmp_path / "r1" / "latest.pt").exists()


# -- TensorBoard --------------------------------------------------------------------------------
def test_tensorboard_events_hold_losses_validation_and_sample_grids(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    pairs = write_ab(tmp_path / "pairs", n=5)
    run = train(pairs=str(pairs), out=str(tmp_path / "run"), epochs=2, epochs_decay=0, val_split=0.2,
                tensorboard=True, **TINY)
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in ("train/D", "train/G_GAN", "train/G_L1", "train/D_real", "train/D_fake", "train/lr",
                "val/l1", "val/psnr", "val/ssim"):
        assert tag in tags["scalars"], tag
    log = read_log(run / "log.jsonl")
    g_l1 = [e.value for e in acc.Scalars("train/G_L1")]
    assert g_l1 == pytest.approx([r["G_L1"] for r in log if "G_L1" in r], rel=1e-6)      # every step
    assert [e.step for e in acc.Scalars("val/l1")] == [r["step"] for r in val_rows(log)]
    images = acc.Images("samples")
    assert [e.step for e in images] == [4, 8]                                               # one grid per epoch
    grid = Image.open(__import__("io").BytesIO(images[-1].encoded_image_string))
    assert grid.size == Image.open(run / "samples" / "epoch_002.png").size


def test_missing_tensorboard_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)                   # import tensorboard -> ImportError
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    pairs = write_ab(tmp_path / "pairs", n=2)
    rc = main(["train", "--pairs", str(pairs), "--out", str(tmp_path / "run"), "--load-size", "36",
               "--crop-size", "32", "--ngf", "8", "--ndf", "8", "--max-steps", "1", "--tensorboard", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "pip install 'img2img[tb]'" in err[0], err
    assert not (tmp_path / "run" / "latest.pt").exists()


# -- the run page, the plot, the progress bar ----------------------------------------------------
def test_run_page_shows_settings_plot_validation_and_every_grid_newest_first(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=5)
    out = tmp_path / "run <b>&x"                                   # escaped on the page
    run = train(pairs=str(pairs), out=str(out), epochs=3, epochs_decay=0, val_split=0.2, **TINY)
    page = (run / "index.html").read_text()
    assert "<b>&x" not in page and "&lt;b&gt;&amp;x" in page
    grids = [page.index(f'src="samples/epoch_{e:03d}.png') for e in (3, 2, 1)]
    assert grids == sorted(grids)                                   # newest first
    assert 'src="losses.png?v=12"' in page and 'href="best.pt"' in page
    assert page.count("<tr class=best>") == 1 and page.count("&#9733; best.pt") == 1
    for r in vals(run):
        assert f"{r['val_l1']:.4f}" in page
    assert "finished: step 12 of 12" in page and "lambda_l1" in page


def test_loss_plot_has_validation_panels_and_survives_odd_logs(tmp_path):
    rows = [{"step": s, "epoch": 1, "lr": 2e-4, "time": s, "D": 0.7, "D_real": 0.5, "D_fake": 0.4,
             **({"G_L1": 30.0 - s / 10, "G_GAN": 1.0} if s % 2 else {})} for s in range(1, 200)]
    rows += [{"step": s, "val_l1": 0.1 - s / 1e4, "val_psnr": 15 + s / 100, "val_ssim": 0.5, "val_count": 2}
             for s in (50, 100, 150)]
    assert loss_plot(rows, tmp_path / "a.png", ["D", "G_GAN", "G_L1", "D_real", "D_fake"], best_by="l1",
                     axes={"G_L1": ("λ·L1", 0.005, "L1 on [0, 1]")}, validation="held-out pairs")
    assert loss_plot(rows[:199], tmp_path / "b.png")                # no validation: a shorter figure
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "b.png") as b:
        assert a.width == b.width == 1200 and a.height > b.height
    assert not loss_plot([], tmp_path / "c.png") and not (tmp_path / "c.png").exists()
    nan = [{"step": 1, "D": float("nan")}, {"step": 2, "D": 0.5}]
    assert loss_plot(nan, tmp_path / "d.png")


def test_progress_plan_counts_the_steps_the_run_will_really_do():
    assert planned_steps(10, 1000, None, 50.0, 10, 50.0) == (1000, False)
    assert planned_steps(10, 1000, 60.0, 10.0, 10, 10.0) == (60, True)          # 1 step/s, 50 s left
    assert planned_steps(10, 30, 60.0, 10.0, 10, 10.0) == (30, False)           # the schedule ends first
    assert planned_steps(10, 1000, 60.0, 70.0, 10, 10.0) == (10, True)          # past the limit
    assert planned_steps(0, 1000, 60.0, 0.0, 0, 0.0) == (None, True)            # nothing measured yet
    assert epochs_label(0, None, 8, True) == "epoch 1/~?"
    assert epochs_label(10, 60, 8, True) == "epoch 2/~8"
    assert epochs_label(16, 16, 8, False) == "epoch 2/2"


def test_the_bar_shows_the_epochs_of_the_run(tmp_path, capsys):
    pairs = write_ab(tmp_path / "pairs", n=4)
    train(pairs=str(pairs), out=str(tmp_path / "run"), epochs=1, epochs_decay=1, time_limit=600,
          **{**TINY, "progress": True})
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "8/8" in err and "epoch 1/200" not in err


# -- profile, snapshots ---------------------------------------------------------------------------
def test_profile_writes_a_chrome_trace_and_the_top_operators(tmp_path, capsys):
    pairs = write_ab(tmp_path / "pairs", n=4)
    run = train(pairs=str(pairs), out=str(tmp_path / "run"), max_steps=6, profile=3, **TINY)
    trace = json.loads((run / "profile" / "trace.json").read_text())
    events = trace["traceEvents"]
    steps = {e["name"] for e in events if e.get("name", "").startswith("ProfilerStep#")}
    assert len(steps) == 3 and any(e.get("name", "").startswith("aten::") for e in events)
    table = (run / "profile" / "top_ops.txt").read_text()
    assert "aten::" in table and "3 training steps" in table
    assert "aten::" in capsys.readouterr().err
    short = train(pairs=str(pairs), out=str(tmp_path / "short"), max_steps=1, profile=5, **TINY)
    assert not (short / "profile" / "trace.json").exists()
    assert "no trace written" in capsys.readouterr().err
    cut = train(pairs=str(pairs), out=str(tmp_path / "cut"), max_steps=4, profile=5, **TINY)
    assert "stopped after 2 of 5" in (cut / "profile" / "top_ops.txt").read_text()


def test_keep_every_writes_generator_only_snapshots(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=2)
    run = train(pairs=str(pairs), out=str(tmp_path / "run"), epochs=4, epochs_decay=1, keep_every=2, **TINY)
    snaps = sorted(p.name for p in (run / "snapshots").iterdir())
    assert snaps == ["epoch_002.pt", "epoch_004.pt"]
    state = load_checkpoint(run / "snapshots" / "epoch_004.pt")["state"]
    assert state["step"] == 8 and set(state) == {"G", "step"}
    assert (run / "snapshots" / "epoch_004.pt").stat().st_size < (run / "latest.pt").stat().st_size / 2
    G, cfg = load_generator(run / "snapshots" / "epoch_002.pt")
    assert cfg.model.ngf == 8 and G(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


@pytest.mark.skipif(__import__("browser").missing() is not None, reason="no headless Chromium here")
def test_run_page_opens_from_the_disk_in_a_browser(tmp_path):
    """index.html in headless Chromium, as a file (no server): every image (plot, grids) loads."""
    import browser
    from selenium.webdriver.common.by import By
    pairs = write_ab(tmp_path / "pairs", n=5)
    run = train(pairs=str(pairs), out=str(tmp_path / "run"), epochs=2, epochs_decay=0, val_split=0.2, **TINY)
    with browser.chromium(1200, 1600) as d:
        browser.open_page(d, (run / "index.html").as_uri(), "img.plot")
        images = browser.wait(d, lambda d: d.execute_script(
            "const i = [...document.images]; return i.every(x => x.complete) ? "
            "i.map(x => [x.getAttribute('src'), x.naturalWidth]) : null"), 30, "the images")
        assert len(images) == 3 and all(w > 0 for _, w in images), images        # plot + 2 grids
        text = d.find_element(By.TAG_NAME, "body").text
        assert "Validation" in text and "best.pt" in text and "epoch 2" in text
