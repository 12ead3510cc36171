"""Hostile use, beyond plain bad input: two trainings on one run folder, outputs that reach the
input through symbolic links, untrusted metadata in model files, a real full disk under torch.save,
option values at and beyond their ranges, a kill between a checkpoint and its sample grid, and
names and folders that would break one-line messages.  Driven through the CLI like
tests/test_bad_input.py; each case: exit status, one line, nothing lost.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import write_a_b, write_ab
from test_bad_input import TRAIN, assert_kept, cli, no_temporaries, snapshot
from tiny_models import make_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX locks, signals and symbolic links")
DEADLINE = 180          # seconds; a guard against a hung subprocess, never a measured result


@pytest.fixture(scope="module")
def p2p(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("models") / "p2p.pt")


@pytest.fixture(scope="module")
def dcgan(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("models") / "dcgan.pt", kind="dcgan", image_size=32)


def start(args: list[str], cwd: Path, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def wait_for_log(p: subprocess.Popen, run: Path, step: int = 1) -> None:
    end = time.monotonic() + DEADLINE
    while True:
        try:
            if len((run / "log.jsonl").read_text().splitlines()) >= step:
                return
        except OSError:
            pass
        assert p.poll() is None, p.communicate()[1].decode()[-2000:]
        assert time.monotonic() < end, "the training subprocess made no progress"
        time.sleep(0.01)


# ----------------------------------------------------------------------------------- 1. one run folder, one training
def test_a_second_training_on_a_busy_run_folder_is_refused_and_a_kill_releases_it(tmp_path, capsys):
    pairs = write_ab(tmp_path / "pairs", n=4)
    run = tmp_path / "run"
    first = start(["-m", "img2img", "train", "--pairs", str(pairs), "--out", str(run), "--max-steps", "100000",
                   "--save-every", "1", *TRAIN], tmp_path)
    try:
        wait_for_log(first, run, 2)
        before_config = (run / "config.json").read_bytes()
        for argv in (["train", "--pairs", pairs, "--out", run, "--max-steps", "3", "--lr", "1e-3", *TRAIN],
                     ["train", "--resume", run, "--no-progress"],
                     ["train", "--out", run, "--resume", "--epochs", "9", "--no-progress"]):
            rc, lines = cli(argv, capsys)
            assert rc == 2 and len(lines) == 1, lines
            assert str(run) in lines[0] and "in use by another training" in lines[0], lines
            assert f"pid {first.pid}" in lines[0], lines                 # the holder is named
        assert (run / "config.json").read_bytes() == before_config     # nothing of the first was touched
        assert first.poll() is None, "the first training must still be running"
    finally:
        first.kill()                                                   # SIGKILL: the OS releases the lock
        first.communicate(timeout=DEADLINE)
    assert first.returncode == -signal.SIGKILL
    rc, lines = cli(["train", "--resume", run, "--max-steps", "3", "--no-progress"], capsys)   # at once
    assert rc == 0, lines
    assert json.loads((run / "config.json").read_text())["train"]["max_steps"] == 3
    assert not no_temporaries(run)


def test_the_lock_names_its_holder_and_refuses_within_one_process(tmp_path, capsys):
    from img2img.files import folder_lock
    pairs = write_ab(tmp_path / "pairs", n=2)
    run = tmp_path / "run"
    with folder_lock(run):
        holder = (run / ".lock").read_text()
        assert f"pid {os.getpid()}" in holder and "started" in holder
        rc, lines = cli(["train", "--pairs", pairs, "--out", run, "--max-steps", "1", *TRAIN], capsys)
        assert rc == 2 and len(lines) == 1 and holder in lines[0], lines
    assert not run.exists()                  # a folder the lock made and nothing used is removed again
    assert cli(["train", "--pairs", pairs, "--out", run, "--max-steps", "1", *TRAIN], capsys)[0] == 0


def test_the_lock_file_may_not_be_a_link(tmp_path, capsys):
    pairs = write_ab(tmp_path / "pairs", n=2)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(victim)
    rc, lines = cli(["train", "--pairs", pairs, "--out", tmp_path / "run", "--max-steps", "1", *TRAIN], capsys)
    assert rc == 1 and len(lines) == 1 and ".lock" in lines[0], lines
    assert victim.read_text() == "precious\n"


# ----------------------------------------------------------------------------------- 2. outputs that reach the input
def linked_tree(tmp_path: Path) -> tuple[Path, Path]:
    """INPUT with a sub-folder, and OUTPUT whose sub/ is a symbolic link to INPUT/sub."""
    src = write_ab(tmp_path / "in", n=2)
    write_ab(src / "sub", n=2, seed=3)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(src / "sub", target_is_directory=True)
    return src, out


WRITERS = {
    "translate": lambda m, src, out: ["translate", m, src, out, "--workers", "0", "--no-progress"],
    "data resize": lambda m, src, out: ["data", "resize", src, out, "--size", "16", "--workers", "1", "--no-progress"],
    "data edges": lambda m, src, out: ["data", "edges", src, out, "--workers", "1", "--no-progress"],
    "data grayscale": lambda m, src, out: ["data", "grayscale", src, out, "--workers", "1", "--no-progress"],
    "data split-ab": lambda m, src, out: ["data", "split-ab", src, out, "--workers", "1", "--no-progress"],
}


@pytest.mark.parametrize("command", list(WRITERS))
def test_an_output_sub_folder_linked_into_the_input_is_refused(command, tmp_path, capsys, p2p):
    src, out = linked_tree(tmp_path)
    before = snapshot(src)
    rc, lines = cli([*WRITERS[command](p2p, src, out), "--overwrite"], capsys)
    if command == "data split-ab":              # writes OUT/A and OUT/B: the link OUT/sub is not on its way
        assert rc == 0, lines
    else:
        assert rc == 2 and len(lines) == 1 and "the input" in lines[0] and str(out / "sub") in lines[0], lines
        assert [p.name for p in out.iterdir()] == ["sub"]               # nothing written at all
    assert_kept(before)
    assert snapshot(src).keys() == before.keys() and not no_temporaries(tmp_path)


@pytest.mark.parametrize("command", ["translate", "data resize"])
def test_an_output_file_linked_to_an_input_file_and_an_output_folder_linked_to_the_input(command, tmp_path, capsys,
                                                                                         p2p):
    src = write_ab(tmp_path / "in", n=2)
    before = snapshot(src)
    out = tmp_path / "out"
    out.mkdir()
    (out / "0.png").symlink_to(src / "0.png")
    rc, lines = cli([*WRITERS[command](p2p, src, out), "--overwrite"], capsys)
    assert rc == 2 and len(lines) == 1 and str(src / "0.png") in lines[0], lines
    (tmp_path / "alias").symlink_to(src, target_is_directory=True)      # OUTPUT is INPUT under another name
    rc, lines = cli([*WRITERS[command](p2p, src, tmp_path / "alias"), "--overwrite"], capsys)
    assert rc == 2 and len(lines) == 1 and "input folder" in lines[0], lines
    assert_kept(before)
    assert snapshot(src).keys() == before.keys()


@pytest.mark.parametrize("suffix", ["/../../in/0", "/../../X", "/x", "a\\b", "a\nb"])
def test_a_suffix_with_a_path_separator_is_refused(suffix, tmp_path, capsys, p2p):
    src = write_ab(tmp_path / "w" / "in", n=2)
    (tmp_path / "w" / "out").mkdir()
    before = snapshot(tmp_path)
    rc, lines = cli(["translate", p2p, src, tmp_path / "w" / "out", "--suffix", suffix, "--overwrite",
                     "--no-progress"], capsys)
    assert rc == 2 and len(lines) == 1 and "--suffix" in lines[0] and "may not contain" in lines[0], lines
    assert snapshot(tmp_path) == before                  # nothing written anywhere, inside or outside OUTPUT


def test_eval_report_folders_that_reach_the_pairs(tmp_path, capsys, p2p):
    pairs = write_ab(tmp_path / "pairs", n=2)
    before = snapshot(pairs)
    (tmp_path / "alias").symlink_to(pairs, target_is_directory=True)
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "images").symlink_to(pairs, target_is_directory=True)
    for out in (tmp_path / "alias", tmp_path / "alias" / "report", rep):
        rc, lines = cli(["eval", p2p, "--pairs", pairs, "--out", out, "--no-progress"], capsys)
        assert rc == 2 and len(lines) == 1 and str(pairs) in lines[0], (out, lines)
    assert_kept(before)
    assert snapshot(pairs).keys() == before.keys()


def test_train_out_may_not_be_or_hold_the_data(tmp_path, capsys):
    pairs = write_ab(tmp_path / "pairs", n=2)
    before = snapshot(pairs)
    (tmp_path / "alias").symlink_to(pairs, target_is_directory=True)
    for out in (pairs, pairs / "run", tmp_path / "alias", tmp_path / "alias" / "run"):
        rc, lines = cli(["train", "--pairs", pairs, "--out", out, "--max-steps", "1", *TRAIN], capsys)
        assert rc == 2 and len(lines) == 1 and "training data folder" in lines[0], (out, lines)
    write_ab(tmp_path / "run" / "samples", n=2)          # data where the grids of --out run would go
    rc, lines = cli(["train", "--pairs", tmp_path / "run" / "samples", "--out", tmp_path / "run", "--max-steps", "1",
                     *TRAIN], capsys)
    assert rc == 2 and len(lines) == 1 and "sample grids" in lines[0], lines
    assert_kept(before)
    assert snapshot(pairs).keys() == before.keys()


def test_export_and_sample_outputs_linked_to_their_model(tmp_path, capsys, p2p, dcgan):
    model = tmp_path / "m.pt"
    model.write_bytes(p2p.read_bytes())
    (tmp_path / "x.onnx").symlink_to(model)
    rc, lines = cli(["export", model, tmp_path / "x.onnx", "--overwrite"], capsys)
    assert rc == 2 and len(lines) == 1 and "input" in lines[0], lines
    assert model.read_bytes() == p2p.read_bytes()
    gan = tmp_path / "g.pt"
    gan.write_bytes(dcgan.read_bytes())
    (tmp_path / "grid.png").symlink_to(gan)
    rc, lines = cli(["sample", gan, "--out", tmp_path / "grid.png", "--grid", "--n", "4", "--overwrite"], capsys)
    assert rc == 2 and len(lines) == 1 and "input" in lines[0], lines
    assert gan.read_bytes() == dcgan.read_bytes()
    (tmp_path / "run").mkdir()                           # writing beside a model, in its run folder, is fine
    gan2 = tmp_path / "run" / "model.pt"
    gan2.write_bytes(dcgan.read_bytes())
    assert cli(["sample", tmp_path / "run", "--out", tmp_path / "run" / "s", "--n", "2"], capsys)[0] == 0


def test_download_refuses_a_linked_partial_file(tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "x.tar.gz.part").symlink_to(victim)
    rc, lines = cli(["data", "download", "x", tmp_path / "dl", "--url", "http://127.0.0.1:9/x.tar.gz",
                     "--no-progress"], capsys)
    assert rc == 2 and len(lines) == 1 and "symbolic link" in lines[0], lines
    assert victim.read_text() == "precious"


# ----------------------------------------------------------------------------------- 3. untrusted model metadata
@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory, p2p) -> Path:
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("onnx") / "p2p.onnx"
    assert cli_quiet(["export", p2p, out, "--exporter", "torchscript"]) == 0
    return out


def cli_quiet(argv) -> int:
    from img2img.cli import main
    return main([str(a) for a in argv])


def with_config(src: Path, dst: Path, text: str) -> Path:
    """A copy of the ONNX file ``src`` whose stored config is ``text``."""
    import onnx
    proto = onnx.load(str(src))
    for entry in proto.metadata_props:
        if entry.key == "img2img_config":
            entry.value = text
    onnx.save(proto, str(dst))
    return dst


def stored(onnx_path: Path) -> dict:
    import onnx
    return json.loads(next(e.value for e in onnx.load(str(onnx_path)).metadata_props if e.key == "img2img_config"))


ONNX_CONFIGS = {
    "invalid JSON": ("{not json", "not valid JSON"),
    "a list": ("[1, 2]", "expected an object"),
    "model is 5": ('{"model": 5}', "model section"),
    "image size 0": ({"image_size": 0}, "image size"),
    "image size -64": ({"image_size": -64}, "image size"),
    "image size abc": ({"image_size": "abc"}, "image-size"),
    "image size 1e6": ({"image_size": 1000000}, "image size"),
    "image size 8192": ({"image_size": 8192}, "4,096"),
    "image size 1e6 as float": ({"image_size": 1e6}, "whole number"),
    "ngf 3000": ({"ngf": 3000}, "ngf"),
    "depth huge": ({"depth": 10 ** 9}, "depth"),
    "kind unknown": ({"kind": "vae"}, "unknown model kind"),
    "dropout nan": ({"dropout": float("nan")}, "dropout"),
    "deep recursion": ("[" * 100000 + "]" * 100000, "configuration stored"),
}


@pytest.mark.parametrize("case", list(ONNX_CONFIGS))
def test_untrusted_onnx_metadata_is_one_line(case, tmp_path, capsys, onnx_model):
    text, words = ONNX_CONFIGS[case]
    if isinstance(text, dict):
        cfg = stored(onnx_model)
        cfg["model"].update(text)
        text = json.dumps(cfg)
    bad = with_config(onnx_model, tmp_path / "bad.onnx", text)
    data = write_ab(tmp_path / "data", n=1)
    for argv in (["translate", bad, data, tmp_path / "tr", "--no-progress"],
                 ["eval", bad, "--pairs", data, "--out", tmp_path / "ev", "--no-progress"]):
        rc, lines = cli(argv, capsys)
        assert rc == 2 and len(lines) == 1, (case, lines)
        assert str(bad) in lines[0] and "configuration stored in this ONNX file" in lines[0] and words in lines[0], \
            (case, lines)
    assert not (tmp_path / "tr").exists() and not (tmp_path / "ev").exists()


def test_an_onnx_graph_whose_metadata_understates_its_size_rule_still_translates(tmp_path, capsys, onnx_model):
    # The export pads to its own multiple inside the graph (any H and W), so metadata that says a
    # shallower U-Net (multiples of 4 instead of 32) can no longer make ONNX Runtime fail on a shape.
    cfg = stored(onnx_model)
    cfg["model"]["depth"] = 2
    odd = with_config(onnx_model, tmp_path / "shallow.onnx", json.dumps(cfg))
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((36, 36, 3), 128, np.uint8)).save(src / "a.png")
    rc, lines = cli(["translate", odd, src, tmp_path / "tr", "--policy", "pad", "--no-progress"], capsys)
    assert rc == 0, lines
    assert Image.open(tmp_path / "tr" / "a.png").size == (36, 36)


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """The device of every generator and discriminator built from now on ('meta' builds allocate nothing)."""
    from img2img.families.pix2pix import Pix2Pix
    seen: list[str] = []
    for name in ("build_generator", "build_discriminator"):
        real = getattr(Pix2Pix, name).__func__

        def wrapped(cls, cfg, _real=real):
            seen.append(torch.empty(0).device.type)
            return _real(cls, cfg)
        monkeypatch.setattr(Pix2Pix, name, classmethod(wrapped))
    return seen


@pytest.mark.parametrize("change,words", [({"ngf": 3000}, "ngf must be between"),
                                          ({"ngf": 512}, "has shape"),            # in range: shapes refuse it
                                          ({"image_size": "256"}, "whole number"),
                                          ({"d_layers": 40}, "d-layers")])
def test_a_checkpoint_asking_for_a_big_network_is_refused_before_building_it(change, words, tmp_path, capsys, p2p,
                                                                             builds):
    from img2img.checkpoint import load_checkpoint, save_checkpoint
    ckpt = load_checkpoint(p2p)
    cfg = ckpt["config"]
    cfg["model"].update(change)
    run = tmp_path / "run"
    save_checkpoint(run / "model.pt", cfg, ckpt["state"])
    data = write_ab(tmp_path / "data", n=1)
    for argv in (["translate", run, data, tmp_path / "tr", "--no-progress"], ["export", run, tmp_path / "x.onnx"]):
        builds.clear()
        rc, lines = cli(argv, capsys)
        assert rc == 2 and len(lines) == 1 and str(run / "model.pt") in lines[0] and words in lines[0], lines
        assert "cpu" not in builds, builds                    # only meta-device builds happened


def test_a_training_state_of_other_shapes_is_refused_before_building(tmp_path, capsys, builds):
    from img2img.checkpoint import load_checkpoint, save_checkpoint
    pairs = write_ab(tmp_path / "pairs", n=2)
    run = tmp_path / "run"
    assert cli(["train", "--pairs", pairs, "--out", run, "--max-steps", "1", *TRAIN], capsys)[0] == 0
    ckpt = load_checkpoint(run / "latest.pt")
    ckpt["config"]["model"]["ndf"] = 900
    save_checkpoint(run / "latest.pt", ckpt["config"], ckpt["state"])
    builds.clear()
    rc, lines = cli(["train", "--resume", run, "--no-progress"], capsys)
    assert rc == 2 and len(lines) == 1 and "D weight" in lines[0] and "has shape" in lines[0], lines
    assert "cpu" not in builds, builds


# ----------------------------------------------------------------------------------- 4. a real full disk
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_checkpoint_write_into_a_full_file_system_is_one_line(tmp_path, capsys, monkeypatch):
    """The write really fails (ENOSPC from /dev/full) inside torch's zip writer, which raises
    RuntimeError('... unexpected pos ...'); the user gets the OS error, not a traceback."""
    import builtins

    import img2img.checkpoint as checkpoint
    pairs = write_ab(tmp_path / "pairs", n=2)
    run = tmp_path / "run"
    assert cli(["train", "--pairs", pairs, "--out", run, "--max-steps", "2", *TRAIN], capsys)[0] == 0
    kept = (run / "latest.pt").read_bytes()

    def full(file, mode="r", *a, **k):
        if "w" in mode and Path(file).name.startswith(".latest.pt."):
            return builtins.open("/dev/full", mode, *a, **k)
        return builtins.open(file, mode, *a, **k)

    raised, real_save = [], torch.save

    def spy(obj, f, *a, **k):
        try:
            return real_save(obj, f, *a, **k)
        except BaseException as e:
            raised.append(e)
            raise

    monkeypatch.setattr(checkpoint, "open", full, raising=False)
    monkeypatch.setattr(torch, "save", spy)
    rc, lines = cli(["train", "--resume", run, "--max-steps", "4", "--no-progress"], capsys)
    assert len(raised) == 1 and isinstance(raised[0], RuntimeError) and "unexpected pos" in str(raised[0])
    assert rc == 1 and "Traceback" not in "\n".join(lines), lines
    assert str(run / "latest.pt") in lines[-1] and "No space left on device" in lines[-1], lines
    assert sum("error" in ln for ln in lines) == 1, lines
    assert (run / "latest.pt").read_bytes() == kept and not no_temporaries(run)


# ----------------------------------------------------------------------------------- 5. option values
OPTIONS = [
    # (command, extra argv, words in the one-line message)
    ("train", ["--lr", "nan"], "lr"), ("train", ["--lr", "inf"], "lr"), ("train", ["--beta1", "2"], "beta1"),
    ("train", ["--beta1", "nan"], "beta1"), ("train", ["--depth", "1"], "depth"),
    ("train", ["--depth", "1000000000"], "depth"), ("train", ["--d-layers", "40"], "d-layers"),
    ("train", ["--d-layers", "4"], "too many for 32x32"), ("train", ["--seed", str(2 ** 70)], "seed"),
    ("train", ["--seed", "-1"], "seed"), ("train", ["--device", "meta"], "--device meta"),
    ("train", ["--device", "mps"], "--device mps"), ("train", ["--device", "xpu"], "--device xpu"),
    ("train", ["--device", "cpu:0:1"], "--device"), ("train", ["--lambda-l1", "-5"], "lambda-l1"),
    ("train", ["--lambda-l1", "nan"], "lambda-l1"), ("train", ["--save-every", "-1"], "save-every"),
    ("train", ["--sample-every", "-2"], "sample-every"), ("train", ["--time-limit", "nan"], "time-limit"),
    ("train", ["--time-limit", "inf"], "time-limit"), ("train", ["--g-ema", "nan"], "g-ema"),
    ("train", ["--g-ema", "1"], "g-ema"), ("train", ["--dropout", "nan"], "dropout"),
    ("train", ["--crop-size", "65536", "--load-size", "65536"], "4,096"),
    ("train", ["--load-size", "100000"], "load-size"), ("train", ["--ngf", "3000"], "ngf"),
    ("train", ["--ndf", "-1"], "ndf"), ("train", ["--workers", "100000"], "workers"),
    ("train", ["--batch-size", "1000000000"], "batch-size"), ("train", ["--epochs", str(10 ** 400)], "epochs"),
    ("train", ["--epochs-decay", "-1"], "epochs-decay"), ("train", ["--max-steps", str(10 ** 20)], "max-steps"),
    ("train", ["--d-steps", "0"], "d-steps"), ("train", ["--d-steps", "1000000"], "d-steps"),
    ("train", ["--z-dim", "0"], "z-dim"), ("train", ["--mlp-hidden", "100000000"], "mlp-hidden"),
    ("train", ["--input-nc", "1", "--output-nc", "1", "--color", "lab"], "lab"),
    ("translate", ["--batch-size", str(10 ** 9)], "batch-size"), ("translate", ["--workers", "100000"], "workers"),
    ("translate", ["--workers", "-1"], "workers"), ("translate", ["--seed", str(2 ** 70), "--dropout-noise"], "seed"),
    ("translate", ["--device", "meta"], "--device meta"), ("translate", ["--device", "cuda:x"], "--device"),
    ("eval", ["--batch-size", str(10 ** 9)], "batch-size"), ("eval", ["--workers", "100000"], "workers"),
    ("eval", ["--device", "xpu"], "--device xpu"),
    ("export", ["--opset", "6"], "opset"), ("export", ["--opset", "24"], "opset"),
    ("sample", ["--n", "1000000000"], "--n"), ("sample", ["--interpolate", "1", "2", "--steps", "100000000"], "--steps"),
    ("sample", ["--nrow", "-3", "--grid"], "--nrow"), ("sample", ["--nrow", "0", "--grid"], "--nrow"),
    ("sample", ["--seed", str(2 ** 70)], "--seed"), ("sample", ["--interpolate", "1", str(2 ** 70)], "seed"),
    ("sample", ["--device", "mps"], "--device mps"),
    ("data resize", ["--quality", "0"], "quality"), ("data resize", ["--quality", "500"], "quality"),
    ("data resize", ["--quality", "-5"], "quality"), ("data resize", ["--workers", "-1"], "workers"),
    ("data resize", ["--workers", "100000"], "workers"), ("data resize", ["--size", "65536"], "size"),
    ("data resize", ["--size", "10000", "--ab"], "size"),
    ("data blank", ["--fraction", "nan"], "fraction"), ("data blank", ["--fraction", "0"], "fraction"),
    ("data edges", ["--sigma", "nan"], "finite"), ("data edges", ["--sigma", "1e9"], "sigma"),
    ("data edges", ["--low", "inf", "--high", "inf"], "finite"), ("data edges", ["--thickness", "100000"], "thickness"),
    ("data grayscale", ["--workers", "-1"], "workers"),
    ("data split", ["--ratios", "nan", "1"], "ratios"), ("data split", ["--ratios", "inf", "1"], "ratios"),
    ("data split", ["--seed", str(2 ** 70)], "seed"),
]


@pytest.mark.parametrize("command,extra,words", OPTIONS, ids=[f"{c} {' '.join(e)[:40]}" for c, e, _ in OPTIONS])
def test_option_values_out_of_range(command, extra, words, tmp_path, capsys, p2p, dcgan):
    src = write_ab(tmp_path / "in", n=1)
    out = tmp_path / "out"
    sizes = [] if {"--crop-size", "--load-size"} & set(extra) else ["--load-size", "36", "--crop-size", "32"]
    base = {
        "train": ["train", "--pairs", src, "--out", out, "--max-steps", "1", *sizes, "--ndf", "8", "--ngf", "8",
                  "--no-progress"],
        "translate": ["translate", p2p, src, out, "--no-progress"],
        "eval": ["eval", p2p, "--pairs", src, "--out", out, "--no-progress"],
        "export": ["export", p2p, tmp_path / "out.onnx"],
        "sample": ["sample", dcgan, "--out", out],
    }.get(command) or [*command.split(), src, out, "--no-progress"]
    rc, lines = cli([*base, *extra], capsys)
    assert rc == 2 and len(lines) == 1 and "error:" in lines[0] and words in lines[0], lines
    assert not out.exists() and not (tmp_path / "out.onnx").exists()


def test_the_python_api_and_stored_configs_share_the_checks(tmp_path):
    from img2img import train
    from img2img.config import ConfigError, RunConfig
    from img2img.families import check, config_from_dict
    for bad in (dict(lr=float("nan")), dict(crop_size="32"), dict(lambda_l1=-1.0), dict(seed=2 ** 64),
                dict(device="meta"), dict(ngf=True)):
        with pytest.raises(ConfigError):
            train(pairs=str(tmp_path), out=str(tmp_path / "run"), **{"load_size": 36, "crop_size": 32, **bad})
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="section must be an object"):
        RunConfig.from_dict({"train": "fast"})
    with pytest.raises(ConfigError, match="G parameters"):    # within every range, but too big altogether
        check(config_from_dict({"model": {"ngf": 1024, "ndf": 1024, "image_size": 256}}), data=False)


def test_export_at_a_low_opset_writes_that_opset_without_a_traceback(tmp_path, capsys, p2p):
    onnx = pytest.importorskip("onnx")
    rc, lines = cli(["export", p2p, tmp_path / "x.onnx", "--opset", "11"], capsys)
    assert rc == 0 and lines[-1].startswith("wrote") and "opset 11" in lines[-1], lines
    assert all(ln.startswith(("note:", "wrote")) for ln in lines), lines
    proto = onnx.load(str(tmp_path / "x.onnx"))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [11]
    # below 11 the in-graph padding (any H and W) has no ONNX form: one line, nothing written
    rc, lines = cli(["export", p2p, tmp_path / "y.onnx", "--opset", "9"], capsys)
    assert rc == 1 and len(lines) == 1 and "opset 9" in lines[0], lines
    assert not (tmp_path / "y.onnx").exists()


# ----------------------------------------------------------------------------------- 6. a kill between checkpoint and grid
KILL_AFTER_SAVE = """
import os, signal, sys
from img2img.gan.trainer import Trainer
real, calls = Trainer.save, [0]
def save(self):
    path = real(self)
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AFTER_SAVE"]):
        os.kill(os.getpid(), signal.SIGKILL)        # latest.pt is in place; whatever comes after is lost
    return path
Trainer.save = save
from img2img.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("kill_after", [2, 4])
def test_a_kill_after_a_checkpoint_never_loses_that_epochs_grid(kill_after, tmp_path):
    """--save-every 1 with 2 steps per epoch: every epoch's end is also a save-every step."""
    pairs = write_ab(tmp_path / "pairs", n=2)
    run = tmp_path / "run"
    p = start(["-c", KILL_AFTER_SAVE, "train", "--pairs", str(pairs), "--out", str(run), "--epochs", "3",
               "--epochs-decay", "0", "--save-every", "1", *TRAIN], tmp_path, KILL_AFTER_SAVE=str(kill_after))
    _, err = p.communicate(timeout=DEADLINE)
    assert p.returncode == -signal.SIGKILL, err.decode()[-2000:]
    from img2img.checkpoint import load_checkpoint
    step = load_checkpoint(run / "latest.pt")["state"]["step"]
    done = step // 2                                       # epochs the checkpoint counts as finished
    assert done >= 1
    for e in range(1, done + 1):
        assert (run / "samples" / f"epoch_{e:03d}.png").is_file(), f"epoch {e}'s grid is missing at step {step}"
    p = start(["-m", "img2img", "train", "--resume", str(run), "--no-progress"], tmp_path)
    _, err = p.communicate(timeout=DEADLINE)
    assert p.returncode == 0, err.decode()[-2000:]
    assert sorted(f.name for f in (run / "samples").iterdir()) == [f"epoch_{e:03d}.png" for e in (1, 2, 3)]


# ----------------------------------------------------------------------------------- 7. names, links, big images
def test_a_file_name_with_a_newline_stays_on_one_line(tmp_path, capsys, p2p):
    src = write_ab(tmp_path / "in", n=1)
    bad = src / "two\nlines.png"
    bad.write_bytes(b"not an image")
    for argv, want in ((["translate", p2p, src, tmp_path / "tr", "--workers", "0", "--no-progress"], 1),
                       (["data", "resize", src, tmp_path / "rs", "--size", "16", "--workers", "1", "--no-progress"], 1),
                       (["train", "--pairs", src, "--out", tmp_path / "run", "--max-steps", "1", *TRAIN], 2)):
        rc, lines = cli(argv, capsys)
        named = [ln for ln in lines if "two\\nlines.png" in ln]
        assert rc == want and len(named) == 1 and "not a recognised image" in named[0], lines
        assert not any(ln.startswith("lines.png") for ln in lines), lines


def test_symlinked_sub_folders_are_announced(tmp_path, capsys, p2p):
    src = write_ab(tmp_path / "in", n=1)
    elsewhere = write_ab(tmp_path / "elsewhere", n=2, seed=4)
    (src / "linked").symlink_to(elsewhere, target_is_directory=True)
    (src / "loop").symlink_to(src, target_is_directory=True)            # would never end if followed
    for argv in (["translate", p2p, src, tmp_path / "tr", "--workers", "0", "--no-progress"],
                 ["data", "resize", src, tmp_path / "rs", "--size", "16", "--workers", "1", "--no-progress"],
                 ["train", "--pairs", src, "--out", tmp_path / "run", "--max-steps", "1", *TRAIN]):
        rc, lines = cli(argv, capsys)
        assert rc == 0, lines
        for link in ("linked", "loop"):
            named = [ln for ln in lines if str(src / link) in ln]
            assert len(named) == 1 and "warning" in named[0] and "not followed" in named[0], lines
    assert sorted(p.name for p in (tmp_path / "tr").iterdir()) == ["0.png"]


def test_edges_runs_in_tiles_and_matches_the_whole_image_canny(monkeypatch):
    import kornia

    from img2img.datatools import ops
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:500].astype(np.float32)
    img = np.stack([xx / 2, yy / 1.5, 128 + 60 * np.sin(xx / 7) * np.cos(yy / 11)], -1)
    for _ in range(8):
        y, x = rng.integers(0, 280, 2)
        img[y:y + rng.integers(5, 150), x:x + rng.integers(5, 250)] = rng.integers(0, 255, 3)
    img = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)

    def whole_image(thickness: int) -> np.ndarray:        # kornia's own Canny with its own hysteresis
        x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None] / 255.0
        _, e = kornia.filters.canny(x, 0.2, 0.5, kernel_size=11, sigma=(1.5, 1.5))
        if thickness > 1:
            e = kornia.morphology.dilation(e, torch.ones(thickness, thickness))
        return np.where(e[0, 0].numpy() > 0.5, 0, 255).astype(np.uint8)

    shapes = []
    real = kornia.filters.canny
    monkeypatch.setattr(kornia.filters, "canny", lambda x, *a, **k: (shapes.append(tuple(x.shape[-2:])),
                                                                       real(x, *a, **k))[1])
    for thickness in (1, 2, 3):
        shapes.clear()
        tiled = ops.edges(img, 0.2, 0.5, 1.5, thickness, tile=64)
        assert len(shapes) == 5 * 8 and max(max(s) for s in shapes) <= 64 + 2 * 8     # tiles plus their margin
        want = whole_image(thickness)
        assert (want == 0).sum() > 1000                                          # there are edges to compare
        assert (tiled != want).mean() < 1e-3, (tiled != want).sum()              # at most rounding at a tie
