"""Bad input for every command, driven through the CLI (``img2img.cli.main``).

Each case must end with a clear message naming the file and the problem -- one line
for a user error, never a traceback -- a non-zero exit status where the command as a
whole failed, and nothing that existed before lost or overwritten.
"""
from __future__ import annotations

import builtins
import errno
import io
import os
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import shapes_image, write_a_b, write_ab
from img2img.cli import main
from tiny_models import make_checkpoint

TRAIN = ["--load-size", "36", "--crop-size", "32", "--ngf", "8", "--ndf", "8", "--no-progress"]


def cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Run img2img in-process: (exit status, stderr lines).  A traceback is always a failure."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:                      # argparse's own usage errors
        rc = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return rc, err.strip().splitlines()


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_kept(before: dict[Path, bytes]) -> None:
    """Every file that existed before still exists with the same bytes."""
    for p, data in before.items():
        assert p.is_file(), f"{p} was removed"
        assert p.read_bytes() == data, f"{p} was changed"


def no_temporaries(root: Path) -> list[Path]:
    return list(root.rglob(".*.tmp"))


def ab_array(seed: int = 0, size: int = 32) -> np.ndarray:
    a = shapes_image(np.random.default_rng(seed), size)
    return np.concatenate([a, 255 - a], 1)


def encoded(arr: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (a decompression bomb's first bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


# name -> (file name, bytes, words the message must contain)
def bad_file(kind: str) -> tuple[str, bytes, str]:
    big = np.asarray(Image.fromarray(ab_array(1)).resize((512, 256)))     # header well before the cut
    jpg, png = encoded(big, "JPEG"), encoded(big, "PNG")
    return {
        "truncated-jpeg": ("cut.jpg", jpg[: len(jpg) // 2], "truncated"),
        "truncated-png": ("cut.png", png[: len(png) // 2], "truncated"),
        "corrupt-jpeg": ("corrupt.jpg", jpg[:2] + bytes(range(256)) * 4 + jpg[1026:], "not a recognised image"),
        "not-an-image": ("notes.png", b"shopping list: eggs, milk\n", "not a recognised image"),
        "zero-byte": ("empty.jpg", b"", "empty file"),
        "too-large": ("bomb.png", png_header_only(20000, 20000), "too large"),
    }[kind]


BAD_KINDS = ["truncated-jpeg", "truncated-png", "corrupt-jpeg", "not-an-image", "zero-byte", "too-large"]


@pytest.fixture(scope="module")
def p2p(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("models") / "p2p.pt")


@pytest.fixture(scope="module")
def dcgan(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("models") / "dcgan.pt", kind="dcgan", image_size=32)


# ----------------------------------------------------------------------------------- broken image files
# The commands that read image folders.  Each gets a folder with good AB files and one bad file.
# "fatal": the whole command refuses (train checks every file up front); otherwise the bad file
# is reported on its own line, the good ones are processed, and the exit status is 1.
READERS = {
    "train": (lambda src, out: ["train", "--pairs", src, "--out", out, "--max-steps", "1", *TRAIN], True),
    "train --images": (lambda src, out: ["train", "--images", src, "--out", out, "--size", "32", "--max-steps", "1",
                                         "--ngf", "8", "--ndf", "8", "--no-progress"], True),
    "translate": (lambda src, out: ["translate", "{p2p}", src, out, "--workers", "0", "--no-progress"], False),
    "eval": (lambda src, out: ["eval", "{p2p}", "--pairs", src, "--out", out, "--workers", "0", "--no-progress"], False),
    "data resize": (lambda src, out: ["data", "resize", src, out, "--size", "16", "--workers", "1", "--no-progress"], False),
    "data edges": (lambda src, out: ["data", "edges", src, out, "--workers", "1", "--no-progress"], False),
    "data split-ab": (lambda src, out: ["data", "split-ab", src, out, "--workers", "1", "--no-progress"], False),
    "data split": (lambda src, out: ["data", "split", src, out, "--workers", "1", "--no-progress"], False),
}


def reader_argv(command: str, src: Path, out: Path, p2p: Path) -> tuple[list[str], bool]:
    make, fatal = READERS[command]
    return [str(p2p) if a == "{p2p}" else a for a in make(str(src), str(out))], fatal


@pytest.mark.parametrize("kind", BAD_KINDS)
@pytest.mark.parametrize("command", list(READERS))
def test_broken_image_files(command, kind, tmp_path, capsys, p2p):
    src = write_ab(tmp_path / "in", n=2)
    name, data, problem = bad_file(kind)
    bad = src / "sub" / name
    bad.parent.mkdir()
    bad.write_bytes(data)
    before = snapshot(tmp_path)
    argv, fatal = reader_argv(command, src, tmp_path / "out", p2p)
    rc, lines = cli(argv, capsys)
    assert rc != 0
    named = [ln for ln in lines if str(bad) in ln]
    assert len(named) == 1 and problem in named[0], lines           # one line names the file and the problem
    if fatal:
        assert rc == 2 and len(lines) == 1 and not (tmp_path / "out").exists(), lines
    else:
        assert rc == 1
        written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
        assert any(p.suffix == ".png" for p in written), "the good files were still processed"
        assert not any(Path(name).stem in p.name for p in written), written     # nothing made of the bad one
    assert_kept(before)
    assert not no_temporaries(tmp_path)


def test_skip_bad_trains_on_the_good_files_and_says_how_many_were_left_out(tmp_path, capsys):
    src = write_ab(tmp_path / "in", n=2)
    for kind in ("truncated-jpeg", "zero-byte", "not-an-image"):
        name, data, _ = bad_file(kind)
        (src / name).write_bytes(data)
    rc, lines = cli(["train", "--pairs", src, "--out", tmp_path / "run", "--max-steps", "1", "--skip-bad", *TRAIN],
                    capsys)
    assert rc == 0 and "2 pairs" in lines[0] and "3 bad file(s) skipped" in lines[0], lines
    assert (tmp_path / "run" / "latest.pt").is_file()


# ----------------------------------------------------------------------------------- unusual but valid images
def write_unusual(folder: Path) -> dict[str, tuple[int, int]]:
    """AB files in every odd format; returns name -> the (width, height) a viewer shows."""
    folder.mkdir(parents=True)
    ab = Image.fromarray(ab_array(2))                     # 64 x 32
    ab.convert("RGBA").save(folder / "rgba.png")
    rgba = np.asarray(ab.convert("RGBA")).copy()
    rgba[:, :8, 3] = 0                                    # a transparent strip
    Image.fromarray(rgba).save(folder / "transparent.png")
    ab.convert("P").save(folder / "palette.png")
    ab.convert("L").save(folder / "gray.png")
    Image.fromarray(np.asarray(ab.convert("L")).astype(np.uint16) * 257).save(folder / "gray16.png")
    ab.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6                                      # stored rotated; a viewer turns it 90 deg clockwise
    Image.fromarray(np.ascontiguousarray(np.rot90(np.asarray(ab), 1))).save(
        folder / "exif.jpg", quality=95, exif=exif.tobytes())
    Image.fromarray(ab_array(3)[:6, :]).resize((10, 3)).save(folder / "tiny.png")     # far below the crop
    sizes = {p.name: (64, 32) for p in folder.iterdir()}
    sizes["tiny.png"] = (10, 3)
    return sizes


def test_unusual_images_work_everywhere_and_exif_orientation_is_respected(tmp_path, capsys, p2p):
    src = tmp_path / "in"
    sizes = write_unusual(src)
    with Image.open(src / "exif.jpg") as im:
        assert im.size == (32, 64)                        # the stored pixels are portrait

    rc, lines = cli(["train", "--pairs", src, "--out", tmp_path / "run", "--max-steps", "2", *TRAIN], capsys)
    assert rc == 0 and f"{len(sizes)} pairs" in lines[0], lines
    rc, lines = cli(["train", "--pairs", src, "--out", tmp_path / "run_nr", "--max-steps", "1", "--no-resize",
                     *TRAIN], capsys)                     # crops at the images' own size: tiny is padded
    assert rc == 0, lines

    for policy in ("resize", "pad"):
        out = tmp_path / f"tr_{policy}"
        rc, lines = cli(["translate", p2p, src, out, "--policy", policy, "--workers", "0", "--no-progress"], capsys)
        assert rc == 0, lines
        for name, size in sizes.items():
            with Image.open(out / name) as im:
                assert im.size == size and im.mode == "RGB", (name, im.size, im.mode)

    rc, lines = cli(["eval", p2p, "--pairs", src, "--out", tmp_path / "ev", "--workers", "0", "--no-progress"], capsys)
    assert rc == 0 and lines[-1].startswith(f"{len(sizes)} pair(s)"), lines

    rc, _ = cli(["data", "split-ab", src, tmp_path / "halves", "--workers", "1", "--no-progress"], capsys)
    assert rc == 0
    want = ab_array(2)[:, :32].astype(int)
    for name in ("exif.jpg", "cmyk.jpg", "rgba.png"):
        got = np.asarray(Image.open(tmp_path / "halves" / "A" / name).convert("RGB")).astype(int)
        assert got.shape == want.shape and np.abs(got - want).mean() < 12, name      # upright, right half
    for op in (["resize", "--size", "16"], ["edges"], ["grayscale"], ["blank"]):
        rc, _ = cli(["data", op[0], src, tmp_path / op[0], *op[1:], "--workers", "1", "--no-progress"], capsys)
        assert rc == 0 and len(list((tmp_path / op[0]).iterdir())) == len(sizes), op
    with Image.open(tmp_path / "grayscale" / "exif.jpg") as im:
        assert im.size == (64, 32)


def test_a_6000x4000_photo_is_translated_and_resized(tmp_path, capsys, p2p):
    """A phone-camera-sized image: handled at its size, memory bounded by a few copies of it."""
    src = tmp_path / "in"
    src.mkdir()
    yy, xx = np.mgrid[0:4000, 0:6000].astype(np.float32)
    img = np.stack([xx / 6000 * 255, yy / 4000 * 255, np.full_like(xx, 128)], -1).astype(np.uint8)
    Image.fromarray(img).save(src / "photo.jpg", quality=85)
    del img, xx, yy
    rc, lines = cli(["translate", p2p, src, tmp_path / "out", "--workers", "0", "--no-progress"], capsys)
    assert rc == 0, lines
    with Image.open(tmp_path / "out" / "photo.jpg") as im:
        assert im.size == (6000, 4000)
    rc, _ = cli(["data", "resize", src, tmp_path / "small", "--size", "64", "--workers", "1", "--no-progress"], capsys)
    assert rc == 0
    with Image.open(tmp_path / "small" / "photo.jpg") as im:
        assert im.size == (64, 64)


# ----------------------------------------------------------------------------------- pairs that do not fit
def test_odd_ab_width(tmp_path, capsys, p2p):
    src = write_ab(tmp_path / "in", n=2)
    Image.fromarray(ab_array(4)[:, :63]).save(src / "odd.png")
    bad = str(src / "odd.png")
    rc, lines = cli(["train", "--pairs", src, "--out", tmp_path / "run", "--max-steps", "1", *TRAIN], capsys)
    assert rc == 2 and len(lines) == 1 and bad in lines[0] and "width 63 is odd" in lines[0], lines
    for argv in (["eval", p2p, "--pairs", src, "--out", tmp_path / "ev", "--workers", "0", "--no-progress"],
                 ["data", "split-ab", src, tmp_path / "sab", "--workers", "1", "--no-progress"],
                 ["data", "resize", src, tmp_path / "rs", "--ab", "--size", "16", "--workers", "1", "--no-progress"]):
        rc, lines = cli(argv, capsys)
        named = [ln for ln in lines if bad in ln]
        assert rc == 1 and len(named) == 1 and "odd" in named[0], (argv, lines)


def test_mismatched_a_b_names(tmp_path, capsys, p2p):
    src = write_a_b(tmp_path / "in", n=3)
    (src / "B" / "img2.jpg").rename(src / "B" / "other.jpg")
    rc, lines = cli(["train", "--pairs", src, "--out", tmp_path / "run", "--max-steps", "1", *TRAIN], capsys)
    assert rc == 2 and len(lines) == 1 and "names must match" in lines[0], lines
    assert "img2.png" in lines[0] or "other.jpg" in lines[0]
    rc, lines = cli(["data", "combine", src, tmp_path / "ab", "--workers", "1", "--no-progress"], capsys)
    assert rc == 1 and sum("no file of the same name" in ln for ln in lines) == 2, lines
    assert len(list((tmp_path / "ab").iterdir())) == 2         # the matching pairs are still combined
    rc, lines = cli(["eval", p2p, "--pairs", src, "--out", tmp_path / "ev", "--workers", "0", "--no-progress"], capsys)
    assert rc == 1 and any("other.jpg" in ln for ln in lines) and lines[-1].startswith("2 pair(s)"), lines


EMPTY = {
    "train": ["train", "--pairs", "{src}", "--out", "{out}", *TRAIN],
    "translate": ["translate", "{p2p}", "{src}", "{out}", "--no-progress"],
    "eval": ["eval", "{p2p}", "--pairs", "{src}", "--out", "{out}", "--no-progress"],
    "data resize": ["data", "resize", "{src}", "{out}", "--no-progress"],
    "data edges": ["data", "edges", "{src}", "{out}", "--no-progress"],
    "data split": ["data", "split", "{src}", "{out}", "--no-progress"],
    "data combine": ["data", "combine", "{src}", "{out}", "--no-progress"],
    "train --images": ["train", "--images", "{src}", "--out", "{out}", "--size", "32", "--no-progress"],
}


@pytest.mark.parametrize("content", ["nothing", "no images"])
@pytest.mark.parametrize("command", list(EMPTY))
def test_empty_folders(command, content, tmp_path, capsys, p2p):
    src = tmp_path / "in"
    (src / "A").mkdir(parents=True)
    (src / "B").mkdir()
    if content == "no images":
        (src / "A" / "readme.txt").write_text("no pictures here")
    argv = [{"{src}": str(src), "{out}": str(tmp_path / "out"), "{p2p}": str(p2p)}.get(a, a) for a in EMPTY[command]]
    rc, lines = cli(argv, capsys)
    assert rc == 2 and len(lines) == 1, lines
    assert str(src) in lines[0] and any(w in lines[0] for w in ("no usable", "no image", "no file names")), lines
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------- unreadable files and folders
@pytest.fixture
def deny(monkeypatch):
    """``deny(path)`` makes a file or folder unreadable.  chmod 000 does not stop root, so where
    the test runs as root (or reads still succeed) open() and os.scandir() refuse it instead."""
    denied: list[Path] = []
    real_open, real_scandir = builtins.open, os.scandir

    def blocked(p) -> bool:
        if isinstance(p, int):
            return False
        try:
            rp = Path(os.fsdecode(p)).resolve()
        except (TypeError, ValueError):
            return False
        return any(rp == d or d in rp.parents for d in denied)

    def fake_open(file, *a, **k):
        if blocked(file):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *a, **k)

    def fake_scandir(path="."):
        if blocked(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    modes: list[tuple[Path, int]] = []

    def make(path: Path) -> None:
        modes.append((path, path.stat().st_mode))
        path.chmod(0)
        if os.access(path, os.R_OK):                 # root: simulate what chmod 000 does for a user
            denied.append(path.resolve())
            monkeypatch.setattr(builtins, "open", fake_open)
            monkeypatch.setattr(os, "scandir", fake_scandir)

    yield make
    for path, mode in modes:
        path.chmod(mode)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_unreadable_files_and_folders(what, tmp_path, capsys, p2p, deny):
    src = write_ab(tmp_path / "in", n=2)
    target = src / "private"
    target.mkdir()
    write_ab(target, n=1, seed=5)
    if what == "file":
        target = target / "0.png"
    deny(target)
    cases = [(["train", "--pairs", src, "--out", tmp_path / "run", "--max-steps", "1", *TRAIN], 2),
             (["translate", p2p, src, tmp_path / "tr", "--workers", "0", "--no-progress"], 1 if what == "file" else 2),
             (["data", "resize", src, tmp_path / "rs", "--size", "16", "--workers", "1", "--no-progress"],
              1 if what == "file" else 2)]
    for argv, want in cases:
        rc, lines = cli(argv, capsys)
        named = [ln for ln in lines if str(target) in ln]
        assert rc == want and len(named) == 1 and "permission denied" in named[0].lower(), (argv, lines)
        if rc == 2:
            assert len(lines) == 1, lines


# ----------------------------------------------------------------------------------- model files
class _Marker:
    """Unpickling this calls open(marker, "w"): code execution made visible as a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_model_file(kind: str, path: Path, marker: Path, p2p: Path) -> str:
    """A bad model file of ``kind`` at ``path``; returns words the error message must contain."""
    if kind == "missing":
        return "no such model file"
    if kind == "random-bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        return "not a PyTorch checkpoint"
    if kind == "text":
        path.write_text("this is not a model\n")
        return "not a PyTorch checkpoint"
    if kind == "zero-byte":
        path.write_bytes(b"")
        return "empty file"
    if kind == "truncated":
        data = p2p.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return "damaged or truncated"
    if kind == "foreign-state-dict":
        torch.save(torch.nn.Linear(3, 3).state_dict(), path)
        return "not an img2img checkpoint"
    if kind == "pickled-module":
        torch.save(torch.nn.Linear(3, 3), path)
        return "refused to load"
    if kind == "code-zip":                      # torch.save archive, img2img-looking, with a code payload
        torch.save({"format": "img2img", "format_version": 1, "config": {}, "state": _Marker(marker)}, path)
        return "refused to load"
    if kind == "code-legacy":                   # the pre-1.6 torch format
        torch.save({"format": "img2img", "state": _Marker(marker)}, path, _use_new_zipfile_serialization=False)
        return "refused to load"
    if kind == "code-pickle":                   # a plain pickle
        path.write_bytes(pickle.dumps({"format": "img2img", "state": _Marker(marker)}, protocol=2))
        return "refused to load"
    raise ValueError(kind)


MODEL_KINDS = ["missing", "random-bytes", "text", "zero-byte", "truncated", "foreign-state-dict", "pickled-module",
               "code-zip", "code-legacy", "code-pickle"]


def model_commands(model: Path, tmp_path: Path, data: Path) -> dict[str, list]:
    return {
        "translate": ["translate", model, data, tmp_path / "tr", "--no-progress"],
        "eval": ["eval", model, "--pairs", data, "--out", tmp_path / "ev", "--no-progress"],
        "export": ["export", model, tmp_path / "x.onnx"],
        "sample": ["sample", model, "--out", tmp_path / "s", "--n", "2"],
        "train --resume": ["train", "--resume", model.parent, "--no-progress"],
    }


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_bad_model_files_for_every_command(kind, tmp_path, capsys, p2p):
    data = write_ab(tmp_path / "data", n=1)
    run = tmp_path / "run"
    run.mkdir()
    model, marker = run / "latest.pt", tmp_path / "CODE_RAN"
    problem = write_model_file(kind, model, marker, p2p)
    before = snapshot(tmp_path)
    for command, argv in model_commands(model, tmp_path, data).items():
        rc, lines = cli(argv, capsys)
        assert rc == 2 and len(lines) == 1, (command, lines)
        where = str(run) if command == "train --resume" and kind == "missing" else str(model)
        assert where in lines[0] and (problem in lines[0] or command == "train --resume" and kind == "missing"), \
            (command, lines)
        assert not marker.exists(), f"{command} ran code from the file"
    assert_kept(before)
    assert not any((tmp_path / n).exists() for n in ("tr", "ev", "x.onnx", "s"))


@pytest.mark.parametrize("kind", ["code-zip", "code-legacy", "code-pickle"])
def test_the_crafted_files_really_run_code_when_loaded_unsafely(kind, tmp_path, p2p):
    """Guards the test above: its payloads are live, so 'no marker' means the load refused them."""
    marker = tmp_path / "CODE_RAN"
    write_model_file(kind, tmp_path / "m.pt", marker, p2p)
    assert not marker.exists()
    try:
        torch.load(tmp_path / "m.pt", weights_only=False)
    except Exception:  # noqa: BLE001 - only the side effect matters
        pass
    assert marker.exists()


def test_damaged_img2img_checkpoints(tmp_path, capsys):
    """Files that load safely and look like ours but do not hold what they claim."""
    from img2img.checkpoint import load_checkpoint, save_checkpoint
    data = write_ab(tmp_path / "data", n=2)
    run = tmp_path / "run"
    assert cli(["train", "--pairs", data, "--out", run, "--max-steps", "1", *TRAIN], capsys)[0] == 0
    full = load_checkpoint(run / "latest.pt")
    bogus = {**full["config"], "model": {**full["config"]["model"], "kind": "bogus"}}
    wider = {**full["config"], "model": {**full["config"]["model"], "ngf": 16}}
    cases = {                                  # file content -> words of the message, per command
        "model.pt as latest.pt": (lambda f: shutil.copy(run / "model.pt", f), None, "no full training state"),
        "invalid config": (lambda f: save_checkpoint(f, bogus, full["state"]), "invalid", "invalid"),
        "weights of another size": (lambda f: save_checkpoint(f, wider, full["state"]), "do not fit", "does not fit"),
        "config not a dict": (lambda f: save_checkpoint(f, [1, 2], full["state"]), "damaged", "damaged"),
        "no weights": (lambda f: save_checkpoint(f, full["config"], {"step": 3}), "no generator weights",
                       "no full training state"),
    }
    for name, (write, use_words, resume_words) in cases.items():
        victim = tmp_path / "victim"
        shutil.rmtree(victim, ignore_errors=True)
        victim.mkdir()
        write(victim / "latest.pt")
        argvs = {"train --resume": (["train", "--resume", victim, "--no-progress"], resume_words)}
        if use_words:
            argvs.update({"translate": (["translate", victim, data, tmp_path / "tr", "--no-progress"], use_words),
                          "export": (["export", victim, tmp_path / "x.onnx"], use_words),
                          "sample": (["sample", victim, "--out", tmp_path / "s"], use_words)})
        for command, (argv, words) in argvs.items():
            rc, lines = cli(argv, capsys)
            assert rc == 2 and len(lines) == 1, (name, command, lines)
            assert str(victim / "latest.pt") in lines[0] and words in lines[0], (name, command, lines)
    assert not any((tmp_path / n).exists() for n in ("tr", "x.onnx", "s"))


def test_a_folder_of_only_bad_files_names_one_of_them(tmp_path, capsys, p2p):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(b"")
    (src / "b.jpg").write_bytes(b"GIF89a not really")
    for argv in (["train", "--pairs", src, "--out", tmp_path / "run", "--skip-bad", *TRAIN],
                 ["eval", p2p, "--pairs", src, "--out", tmp_path / "ev", "--no-progress"]):
        rc, lines = cli(argv, capsys)
        assert rc == 2 and len(lines) == 1, lines
        assert "2 bad file(s)" in lines[0] and str(src / "a.png") in lines[0] and "empty file" in lines[0], lines


def test_a_model_of_the_wrong_kind(tmp_path, capsys, p2p, dcgan):
    data = write_ab(tmp_path / "data", n=1)
    for argv in (["translate", dcgan, data, tmp_path / "tr", "--no-progress"],
                 ["eval", dcgan, "--pairs", data, "--out", tmp_path / "ev", "--no-progress"]):
        rc, lines = cli(argv, capsys)
        assert rc == 2 and len(lines) == 1 and str(dcgan) in lines[0] and "dcgan" in lines[0], lines
    rc, lines = cli(["sample", p2p, "--out", tmp_path / "s"], capsys)
    assert rc == 2 and len(lines) == 1 and str(p2p) in lines[0] and "pix2pix" in lines[0], lines
    # an ONNX file that is not one, and a run folder without a checkpoint
    (tmp_path / "fake.onnx").write_bytes(b"\x08\x01garbage")
    rc, lines = cli(["translate", tmp_path / "fake.onnx", data, tmp_path / "tr", "--no-progress"], capsys)
    assert rc == 2 and len(lines) == 1 and "fake.onnx" in lines[0], lines
    (tmp_path / "emptyrun").mkdir()
    rc, lines = cli(["export", tmp_path / "emptyrun", tmp_path / "x.onnx"], capsys)
    assert rc == 2 and len(lines) == 1 and "no checkpoint" in lines[0], lines
    assert not any((tmp_path / n).exists() for n in ("tr", "ev", "s", "x.onnx"))


def test_unreadable_model_file(tmp_path, capsys, p2p, deny):
    model = tmp_path / "model.pt"
    shutil.copy(p2p, model)
    deny(model)
    rc, lines = cli(["export", model, tmp_path / "x.onnx"], capsys)
    assert rc == 2 and len(lines) == 1 and str(model) in lines[0] and "permission denied" in lines[0], lines


# ----------------------------------------------------------------------------------- option values
OPTIONS = [
    # (argv after the command's required arguments, rc, words in the message)
    ("train", ["--crop-size", "-4"], 2, "crop-size"),
    ("train", ["--load-size", "16", "--crop-size", "32"], 2, "smaller than crop-size"),
    ("train", ["--batch-size", "0"], 2, "batch-size"),
    ("train", ["--max-steps", "0"], 2, "max-steps"),
    ("train", ["--lr", "-1"], 2, "learning rates"),
    ("train", ["--epochs", "0", "--epochs-decay", "0"], 2, "epochs"),
    ("train", ["--time-limit", "0"], 2, "time-limit"),
    ("train", ["--workers", "-1"], 2, "workers"),
    ("train", ["--device", "bogus"], 2, "--device bogus"),
    ("train", ["--depth", "6"], 2, "2^depth"),
    ("train", ["--ngf", "0"], 2, "ngf"),
    ("train", ["--size", "32"], 2, "--size is for dcgan"),
    ("train", ["--model", "vae"], 2, "invalid choice"),
    ("train", ["--direction", "sideways"], 2, "invalid choice"),
    ("train", ["--crop-size", "big"], 2, "invalid int value"),
    ("translate", ["--batch-size", "0"], 2, "batch-size"),
    ("translate", ["--workers", "-1"], 2, "workers"),
    ("translate", ["--policy", "stretch"], 2, "invalid choice"),
    ("translate", ["--format", "gif"], 2, "invalid choice"),
    ("translate", ["--device", "cuda:7"], 2, "cuda"),
    ("eval", ["--batch-size", "0"], 2, "batch-size"),
    ("eval", ["--workers", "-1"], 2, "workers"),
    ("export", ["--opset", "3"], 2, "opset"),
    ("sample", ["--n", "0"], 2, "--n"),
    ("sample", ["--interpolate", "1", "2", "--steps", "1"], 2, "--steps"),
    ("data resize", ["--size", "-5"], 2, "size"),
    ("data resize", ["--ext", "gif"], 2, "extension"),
    ("data blank", ["--fraction", "2"], 2, "fraction"),
    ("data edges", ["--low", "0.9", "--high", "0.1"], 2, "low"),
    ("data edges", ["--thickness", "0"], 2, "thickness"),
    ("data split", ["--ratios", "1", "-1"], 2, "ratios"),
]


@pytest.mark.parametrize("command,extra,want,words", OPTIONS,
                         ids=[f"{c}{' '.join(e)}" for c, e, _, _ in OPTIONS])
def test_invalid_option_values(command, extra, want, words, tmp_path, capsys, p2p, dcgan):
    src = write_ab(tmp_path / "in", n=1)
    out = tmp_path / "out"
    sizes = [] if {"--crop-size", "--load-size"} & set(extra) else ["--load-size", "36", "--crop-size", "32"]
    base = {
        "train": ["train", "--pairs", src, "--out", out, "--max-steps", "1", *sizes, "--ndf", "8", "--no-progress"],
        "translate": ["translate", p2p, src, out, "--no-progress"],
        "eval": ["eval", p2p, "--pairs", src, "--out", out, "--no-progress"],
        "export": ["export", p2p, tmp_path / "out.onnx"],
        "sample": ["sample", dcgan, "--out", out],
    }.get(command) or [*command.split(), src, out, "--no-progress"]
    rc, lines = cli([*base, *extra], capsys)
    assert rc == want, lines
    if "invalid" in words:                       # argparse: usage, then one error line
        assert "error:" in lines[-1] and words in lines[-1], lines
    else:
        assert len(lines) == 1 and "error:" in lines[0] and words in lines[0], lines
    assert not out.exists() and not (tmp_path / "out.onnx").exists()


# ----------------------------------------------------------------------------------- a full disk
@pytest.fixture
def full_disk(monkeypatch):
    """Every image, ONNX and checkpoint write writes a few bytes, then fails with ENOSPC."""
    def fail(target):
        Path(target if isinstance(target, (str, Path)) else target.name).write_bytes(b"partial")   # or a file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", lambda self, fp, *a, **k: fail(fp))
    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: fail(f))
    import onnx
    monkeypatch.setattr(onnx, "save", lambda proto, f, *a, **k: fail(f))
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: fail(self))


def test_a_full_disk_keeps_every_previous_output(tmp_path, capsys, p2p, dcgan, monkeypatch, request):
    src = write_ab(tmp_path / "in", n=2)
    outs = {"tr": ["translate", p2p, src, tmp_path / "tr", "--workers", "0", "--no-progress"],
            "ev": ["eval", p2p, "--pairs", src, "--out", tmp_path / "ev", "--workers", "0", "--no-progress"],
            "rs": ["data", "resize", src, tmp_path / "rs", "--size", "16", "--workers", "1", "--no-progress"],
            "x.onnx": ["export", p2p, tmp_path / "x.onnx", "--exporter", "torchscript"],
            "s": ["sample", dcgan, "--out", tmp_path / "s", "--n", "2"]}
    for argv in outs.values():                   # the outputs of an earlier, successful run
        assert cli(argv, capsys)[0] == 0
    before = snapshot(tmp_path)
    request.getfixturevalue("full_disk")
    for name, argv in outs.items():
        rc, lines = cli([*argv, "--overwrite"], capsys)
        assert rc == 1, (name, lines)
        errors = [ln for ln in lines if "No space left on device" in ln]
        assert errors and all(str(tmp_path / name) in ln for ln in errors), (name, lines)
        if name in ("ev", "x.onnx", "s"):        # the command as a whole failed: one line
            assert len(lines) == 1, (name, lines)
    assert_kept(before)
    assert not no_temporaries(tmp_path)


@pytest.mark.parametrize("what", ["checkpoint", "sample grid"])
def test_a_full_disk_while_training_keeps_the_last_checkpoint(what, tmp_path, capsys, monkeypatch):
    src = write_ab(tmp_path / "in", n=2)
    run = tmp_path / "run"
    assert cli(["train", "--pairs", src, "--out", run, "--max-steps", "2", *TRAIN], capsys)[0] == 0
    before = snapshot(run)

    def fail(target):
        Path(target if isinstance(target, (str, Path)) else target.name).write_bytes(b"partial")   # or a file
        raise OSError(errno.ENOSPC, "No space left on device")

    if what == "checkpoint":
        monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: fail(f))
    else:
        monkeypatch.setattr(Image.Image, "save", lambda self, fp, *a, **k: fail(fp))
    rc, lines = cli(["train", "--resume", run, "--max-steps", "4"], capsys)
    assert rc == 1 and "No space left on device" in lines[-1], lines
    assert str(run / ("latest.pt" if what == "checkpoint" else "samples")) in lines[-1], lines
    assert sum("error" in ln for ln in lines) == 1, lines
    # (the log is appended to, config.json records the new --max-steps, losses.png plots the log and
    # index.html shows it: both are drawn before the checkpoint that marks the epoch done)
    assert_kept({p: b for p, b in before.items()
                 if p.name not in ("log.jsonl", "config.json", "losses.png", "index.html")})
    assert not no_temporaries(run)


# -- resume: a hand-edited config.json, a run folder one cannot write -------------------------------
def test_a_hand_edit_of_config_json_is_refused_or_noted_on_resume_never_dropped_silently(tmp_path, capsys):
    import json
    run = tmp_path / "run"
    rc, _ = cli(["train", "--pairs", write_ab(tmp_path / "pairs", n=4), "--out", run, "--max-steps", "1", *TRAIN],
                capsys)
    assert rc == 0
    path = run / "config.json"
    cfg = json.loads(path.read_text())
    edited = json.loads(path.read_text())
    edited["model"]["ngf"] = 16                                      # a model setting: fixed by the checkpoint
    path.write_text(json.dumps(edited))
    before = snapshot(run)
    rc, lines = cli(["train", "--resume", run, "--max-steps", "2"], capsys)
    assert rc == 2 and len(lines) == 1, lines
    assert str(path) in lines[0] and "ngf is 16 there but 8 in latest.pt" in lines[0], lines
    assert_kept(before)                                              # the edit is still there, nothing ran

    edited["model"]["ngf"] = 8
    edited["train"]["epochs"] = 7                                    # resumable: kept from the checkpoint, said
    path.write_text(json.dumps(edited))
    rc, lines = cli(["train", "--resume", run, "--max-steps", "2"], capsys)
    assert rc == 0
    note = [ln for ln in lines if ln.startswith("note:")]
    assert len(note) == 1 and "epochs 7" in note[0] and f"{cfg['train']['epochs']}" in note[0] \
        and "--epochs 7" in note[0], lines
    assert json.loads(path.read_text())["train"]["epochs"] == cfg["train"]["epochs"]
    rc, lines = cli(["train", "--resume", run, "--max-steps", "3"], capsys)   # rewritten: nothing more to say
    assert rc == 0 and not [ln for ln in lines if ln.startswith("note:")], lines

    path.write_text("{ngf: 16")
    rc, lines = cli(["train", "--resume", run, "--max-steps", "4"], capsys)
    assert rc == 2 and len(lines) == 1 and str(path) in lines[0] and "does not parse" in lines[0], lines
    assert path.read_text() == "{ngf: 16"


def test_resume_in_a_run_folder_one_cannot_write_says_so_and_translate_still_reads_it(tmp_path, capsys,
                                                                                     monkeypatch):
    run = tmp_path / "run"
    rc, _ = cli(["train", "--pairs", write_ab(tmp_path / "pairs", n=4), "--out", run, "--max-steps", "1", *TRAIN],
                capsys)
    assert rc == 0
    before = snapshot(run)
    real_open = os.open

    def refused(path, flags, *args, **kwargs):                       # what a read-only folder does (root
        if Path(path).name == ".lock" and flags & os.O_CREAT:       # ignores chmod, so it is made up here)
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(os, "open", refused)
    rc, lines = cli(["train", "--resume", run, "--max-steps", "2"], capsys)
    assert rc == 2 and len(lines) == 1, lines
    assert "the run folder is not writable" in lines[0] and "cannot continue there" in lines[0] \
        and "--resume NEW" in lines[0] and str(run) in lines[0], lines
    rc, lines = cli(["train", "--pairs", tmp_path / "pairs", "--out", tmp_path / "new", *TRAIN], capsys)
    assert rc == 2 and len(lines) == 1 and "not writable" in lines[0] and "choose another --out" in lines[0], lines
    monkeypatch.undo()
    assert_kept(before)
    rc, _ = cli(["translate", run, tmp_path / "pairs", tmp_path / "out", "--no-progress"], capsys)
    assert rc == 0


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes where chmod says not")
def test_resume_in_a_really_read_only_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    rc, _ = cli(["train", "--pairs", write_ab(tmp_path / "pairs", n=4), "--out", run, "--max-steps", "1", *TRAIN],
                capsys)
    assert rc == 0
    (run / ".lock").unlink(missing_ok=True)
    os.chmod(run, 0o555)
    try:
        rc, lines = cli(["train", "--resume", run, "--max-steps", "2"], capsys)
    finally:
        os.chmod(run, 0o755)
    assert rc == 2 and len(lines) == 1 and "not writable" in lines[0], lines


def test_a_file_that_turns_bad_mid_run_is_skipped_named_and_counted_with_the_cache_off(tmp_path, capsys,
                                                                                      monkeypatch):
    import json

    from img2img.gan.trainer import Trainer
    pairs = write_ab(tmp_path / "pairs", n=4)
    victim = sorted(pairs.iterdir())[1]
    real_end = Trainer.end_of_epoch

    def end_of_epoch(self, *args, **kwargs):                         # after the first epoch, the file breaks
        victim.write_bytes(b"\x89PNG garbage")
        return real_end(self, *args, **kwargs)
    monkeypatch.setattr(Trainer, "end_of_epoch", end_of_epoch)
    run = tmp_path / "run"
    rc, lines = cli(["train", "--pairs", pairs, "--out", run, "--no-cache", "--batch-size", "1", "--epochs", "2",
                     "--epochs-decay", "1", *TRAIN], capsys)
    assert rc == 0, lines
    warned = [ln for ln in lines if ln.startswith("warning:")]
    assert len(warned) == 1 and str(victim) in warned[0] and "skipped" in warned[0], lines
    assert "1 file(s) could not be decoded and were skipped" in lines[-1], lines
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    # 3 epochs of 4 steps, batch 1: the broken file's step in epochs 2 and 3 has nothing to train on (no row)
    steps = [r["step"] for r in rows]
    assert steps[:4] == [1, 2, 3, 4] and len(steps) == 10 and steps == sorted(set(steps)) and steps[-1] == 12, rows
    assert "skipped" not in rows[3] and all(r["skipped"] == 1 for r in rows[4:]), rows
