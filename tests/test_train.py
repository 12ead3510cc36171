import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY, write_ab
from learning_cases import pix2pix_tiny
from img2img import __version__, train
from img2img.checkpoint import CheckpointError, load_checkpoint
from img2img.cli import main
from img2img.config import ConfigError
from img2img.inference import load_generator
from img2img.gan.trainer import lr_factor
from img2img.report import read_log


def log_of(run):
    return read_log(Path(run) / "log.jsonl")


def test_tiny_run_learns_the_mapping_and_writes_the_run_folder(tmp_path):
    """The L1 ratio (last 10 steps / first 10) measured by tools/learning_margins.py, seeds 1-3 under the
    AVX-512 and the AVX2 kernels on an AMD EPYC: 0.51-0.57; with lr 1e-9 (nothing learned): 0.99."""
    got = pix2pix_tiny(tmp_path, seed=1)
    run = Path(got["run"])
    rows = log_of(run)
    assert len(rows) == 25 * 8 and rows[-1]["step"] == 200
    assert got["l1_ratio"] < 0.75, got                        # the L1 term falls clearly
    assert all(k in rows[0] for k in ("D", "G_GAN", "G_L1", "D_real", "D_fake", "lr"))
    assert rows[-1]["lr"] < rows[0]["lr"]                      # decayed at the end
    for name in ("config.json", "latest.pt", "model.pt", "losses.png", "log.jsonl"):
        assert (run / name).is_file(), name
    assert len(list((run / "samples").glob("epoch_*.png"))) == 25
    assert json.loads((run / "config.json").read_text())["model"]["depth"] == 5     # 32 -> 1x1
    # the model file rebuilds itself from its stored config: no architecture flags
    G, cfg = load_generator(run)
    assert cfg.model.ngf == 8 and cfg.data.crop_size == 32
    with torch.no_grad():
        assert G(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    assert not list(run.glob(".*.tmp"))                       # no temporary files left behind


def test_resume_gives_the_same_state_as_an_uninterrupted_run(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=4, size=32)
    common = dict(pairs=str(pairs), epochs=3, epochs_decay=2, seed=7, **TINY)
    full = train(out=str(tmp_path / "full"), **common)
    part = train(out=str(tmp_path / "part"), max_steps=9, save_every=9, **common)   # stops mid-epoch
    assert load_checkpoint(part)["state"]["step"] == 9
    resumed = train(out=str(part), resume=True, max_steps=None)
    a, b = load_checkpoint(full)["state"], load_checkpoint(resumed)["state"]
    assert a["step"] == b["step"] == 20
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    for opt in ("opt_g", "opt_d"):
        sa, sb = a[opt]["state"], b[opt]["state"]
        assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    assert a["meters"] == b["meters"]
    la, lb = log_of(full), log_of(resumed)
    assert [r["step"] for r in lb] == list(range(1, 21))
    assert [(r["G_L1"], r["lr"]) for r in la] == [(r["G_L1"], r["lr"]) for r in lb]


def test_resume_refuses_architecture_changes_and_existing_runs_are_not_overwritten(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=2, size=32)
    run = train(pairs=str(pairs), out=str(tmp_path / "run"), max_steps=2, **TINY)
    before = (run / "latest.pt").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        train(pairs=str(pairs), out=str(run), max_steps=2, **TINY)
    with pytest.raises(ConfigError, match="--ngf"):
        train(out=str(run), resume=True, ngf=16)
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(out=str(tmp_path / "nope"), resume=True)
    assert (run / "latest.pt").read_bytes() == before


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    pairs = write_ab(tmp_path / "pairs", n=2, size=32)
    run = train(pairs=str(pairs), out=str(tmp_path / "run"), max_steps=2, **TINY)
    before = (run / "latest.pt").read_bytes()

    def disk_full(obj, f, *a, **k):
        Path(f if isinstance(f, (str, Path)) else f.name).write_bytes(b"partial")   # a path or a file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    from img2img.gan.trainer import TrainingError
    with pytest.raises(TrainingError, match="No space left"):
        train(out=str(run), resume=True, max_steps=4)
    assert (run / "latest.pt").read_bytes() == before
    assert not list(run.glob(".*.tmp"))


def test_lab_and_colorization_runs(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=2, size=32)
    run = train(pairs=str(pairs), out=str(tmp_path / "lab"), color="lab", max_steps=2, **TINY)
    assert (run / "samples" / "epoch_001.png").is_file()
    run = train(pairs=str(pairs), out=str(tmp_path / "col"), colorization=True, max_steps=2, **TINY)
    G, cfg = load_generator(run)
    assert (cfg.model.input_nc, cfg.model.output_nc) == (1, 2)


def test_lr_schedule():
    assert lr_factor(0.0, 1, 1) == 1.0 and lr_factor(0.5, 1, 1) == 1.0
    assert lr_factor(0.75, 1, 1) == pytest.approx(0.5) and lr_factor(1.0, 1, 1) == 0.0
    assert lr_factor(0.9, 5, 0) == 1.0


# -- the command line ------------------------------------------------------------

def test_cli_train_and_errors(tmp_path, capsys):
    pairs = write_ab(tmp_path / "pairs", n=3, size=32)
    rc = main(["train", "--pairs", str(pairs), "--out", str(tmp_path / "run"), "--load-size", "36",
               "--crop-size", "32", "--ngf", "8", "--ndf", "8", "--max-steps", "3", "--direction", "BtoA",
               "--no-flip", "--no-progress"])
    assert rc == 0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["data"]["direction"] == "BtoA" and cfg["data"]["flip"] is False
    assert cfg["train"]["lr"] == 2e-4 and cfg["train"]["lambda_l1"] == 100.0     # defaults from the dataclasses
    (pairs / "bad.png").write_bytes(b"\x89PNG garbage")
    capsys.readouterr()
    rc = main(["train", "--pairs", str(pairs), "--out", str(tmp_path / "run2"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "bad.png" in err[0]
    assert not (tmp_path / "run2" / "latest.pt").exists()
    rc = main(["train", "--pairs", str(pairs), "--out", str(tmp_path / "run3"), "--crop-size", "30", "--load-size", "32"])
    assert rc == 2 and "multiple of" in capsys.readouterr().err


def test_cli_version_and_help():
    out = subprocess.run([sys.executable, "-m", "img2img", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout
    out = subprocess.run([sys.executable, "-m", "img2img", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--pairs", "--out", "--direction", "--epochs", "--epochs-decay", "--max-steps", "--batch-size",
                 "--load-size", "--crop-size", "--no-flip", "--color", "--colorization", "--ngf", "--ndf",
                 "--lambda-l1", "--lr", "--device", "--seed", "--resume"):
        assert flag in out.stdout, flag


def test_every_setting_declared_with_help_is_a_train_flag_that_sets_it():
    """A setting is declared once, in its dataclass (config.setting): the flag follows from it."""
    from dataclasses import fields

    from img2img.cli import build_parser
    from img2img.config import DataConfig, ModelConfig, TrainConfig
    train_parser = build_parser("train")._subparsers._group_actions[0].choices["train"]
    actions = {a.dest: a for a in train_parser._actions}
    declared = [f for k in (ModelConfig, DataConfig, TrainConfig) for f in fields(k) if "help" in f.metadata]
    assert len(declared) > 50
    for f in declared:
        assert f.name in actions, f.name
        assert actions[f.name].help.startswith(f.metadata["help"].split("{")[0][:20]), f.name
    args = build_parser("train").parse_args(["train", "--no-flip", "--ngf", "16", "--n-layers-d", "2", "--lr-d", "1e-3",
                                             "--tensorboard", "--no-cpu-matmul", "--val-split", "0.25"])
    assert (args.flip, args.ngf, args.d_layers, args.lr_d, args.tensorboard, args.cpu_matmul, args.val_split) == \
        (False, 16, 2, 1e-3, True, False, 0.25)
    assert not hasattr(args, "lr")                            # not given: the dataclass default applies later
    from img2img.config import spelled                        # the same flags, as the resume note spells them
    assert (spelled("epochs", 7), spelled("cache", False), spelled("d_layers", 2)) == \
        ("--epochs 7", "--no-cache", "--n-layers-d 2")
    assert spelled("progress", True) is None and spelled("tensorboard", False) is None   # no flag does that


def test_mixed_precision_path_runs_on_the_cpu(tmp_path):
    """--amp bf16 (the GPU default where supported) through the same loop; fp16 needs CUDA."""
    pairs = write_ab(tmp_path / "pairs", n=2, size=32)
    run = train(pairs=str(pairs), out=str(tmp_path / "bf16"), amp="bf16", max_steps=3, **TINY)
    rows = log_of(run)
    assert len(rows) == 3 and all(r["G_L1"] == r["G_L1"] for r in rows)     # finite, logged
    with pytest.raises(ConfigError, match="CUDA"):
        train(pairs=str(pairs), out=str(tmp_path / "fp16"), amp="fp16", device="cpu", max_steps=1, **TINY)
