"""Data set tools (img2img.datatools and `img2img data ...`) on small images made here."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from img2img import datatools as dt
from img2img.cli import build_parser, main
from img2img.config import ConfigError
from img2img.data.io import DataError, load_image

RED, BLUE, GREEN, WHITE = (220, 30, 30), (30, 30, 220), (30, 200, 60), (255, 255, 255)


def _png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _solid(h: int, w: int, color) -> np.ndarray:
    return np.tile(np.array(color, np.uint8), (h, w, 1))


def _photo(seed: int, h: int = 24, w: int = 24) -> np.ndarray:
    """A dark square on a light, slightly noisy background (has clear edges)."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 230, np.uint8) - rng.integers(0, 6, (h, w, 3)).astype(np.uint8)
    t, l = int(rng.integers(1, max(2, h // 3))), int(rng.integers(1, max(2, w // 3)))
    img[t:t + h // 2, l:l + w // 2] = rng.integers(0, 60, 3)
    return img


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture
def photos(tmp_path):
    src = tmp_path / "photos"
    for i in range(4):
        _png(src / f"p{i}.png", _photo(i))
    _png(src / "sub" / "q.png", _photo(9, 20, 30))
    return src


# ---------------------------------------------------------------- pixel operations

def test_resize_crop_and_pad():
    img = np.concatenate([_solid(20, 10, RED), _solid(20, 20, GREEN), _solid(20, 10, BLUE)], axis=1)  # 40x20
    crop = dt.ops.resize_square(img, 16, "crop", "nearest")
    assert crop.shape == (16, 16, 3)
    assert (crop == GREEN).all()                          # the centre 20x20 (green) fills the square
    pad = dt.ops.resize_square(img, 16, "pad", "nearest")
    assert pad.shape == (16, 16, 3)
    assert (pad[:4] == 255).all() and (pad[-4:] == 255).all()   # 16x8 image centred on white
    assert (pad[4:12, :3] == RED).all() and (pad[4:12, -3:] == BLUE).all()


def test_blank_grayscale_edges_pixels():
    img = _solid(10, 20, RED)
    b = dt.ops.blank(img, 0.5)
    assert (b[2:7, 5:15] == 255).all() and (b[:2] == RED).all() and (b[7:] == RED).all() and (b[:, :5] == RED).all()
    g = dt.ops.grayscale(img)
    assert g.shape == (10, 20) and int(g[0, 0]) == round(0.299 * 220 + 0.587 * 30 + 0.114 * 30)

    sq = np.full((32, 32, 3), 255, np.uint8)
    sq[8:24, 8:24] = 128            # a mid-grey outline puts each side's gradient maximum on one pixel row:
    sq[9:23, 9:23] = 0              # a bare black/white step ties two rows, and rounding picks (kornia 0.8 vs 0.9)
    e1 = dt.ops.edges(sq, thickness=1)
    e3 = dt.ops.edges(sq, thickness=3)
    lines = e1 == 0
    assert set(np.unique(e1)) <= {0, 255} and lines.any()
    ring = np.zeros_like(lines)
    ring[5:27, 5:27] = True
    ring[11:21, 11:21] = False
    assert not (lines & ~ring).any()                      # edges only around the square's outline
    assert lines[5:27, 5:27].sum(axis=0)[12] >= 2         # both horizontal sides are found
    assert (e3 == 0).sum() > 1.5 * lines.sum()            # thicker lines
    assert not (dt.ops.edges(np.full((16, 16, 3), 128, np.uint8)) == 0).any()   # flat image: no edges


# ---------------------------------------------------------------- folder operations

def test_resize_folder_keeps_names_and_ab_halves(tmp_path):
    src = tmp_path / "ab"
    _png(src / "x.png", np.concatenate([_solid(20, 30, RED), _solid(20, 30, BLUE)], axis=1))
    _png(src / "deep" / "y.png", np.concatenate([_solid(12, 12, GREEN), _solid(12, 12, RED)], axis=1))
    r = dt.resize(src, tmp_path / "out", 8, ab=True, resample="nearest", workers=1, progress=False)
    assert r.ok and r.done == r.total == 2
    x = _read(tmp_path / "out" / "x.png")
    assert x.shape == (8, 16, 3) and (x[:, :8] == RED).all() and (x[:, 8:] == BLUE).all()
    assert _read(tmp_path / "out" / "deep" / "y.png").shape == (8, 16, 3)


def test_derived_pairs_layouts(photos, tmp_path):
    r = dt.edges(photos, tmp_path / "ab", workers=1, progress=False)
    assert r.ok and r.done == 5
    ab = _read(tmp_path / "ab" / "p0.png")
    assert ab.shape == (24, 48, 3)
    assert (ab[:, 24:] == _photo(0)).all()                # B: the photo itself
    assert set(np.unique(ab[:, :24])) == {0, 255}         # A: black lines on white

    r = dt.blank(photos, tmp_path / "folders", layout="folders", fraction=0.25, workers=1, progress=False)
    a, b = _read(tmp_path / "folders" / "A" / "sub" / "q.png"), _read(tmp_path / "folders" / "B" / "sub" / "q.png")
    assert (b == _photo(9, 20, 30)).all()
    assert (a[7:12, 11:19] == 255).all() and (a[:7] == b[:7]).all() and (a[12:] == b[12:]).all()

    dt.grayscale(photos, tmp_path / "gray", workers=1, progress=False)
    g = Image.open(tmp_path / "gray" / "p1.png")
    assert g.mode == "L" and g.size == (24, 24)


def test_parallel_workers_match_serial(photos, tmp_path):
    import torch
    torch.nn.functional.conv2d(torch.randn(1, 3, 32, 32), torch.randn(4, 3, 3, 3))   # torch busy before fork
    dt.edges(photos, tmp_path / "serial", workers=1, progress=False)
    r = dt.edges(photos, tmp_path / "par", workers=2, progress=False)
    assert r.ok and r.done == 5
    assert _snapshot(tmp_path / "serial") == _snapshot(tmp_path / "par")


def test_combine_reports_mismatches_and_split_ab_inverts_it(tmp_path):
    a, b = tmp_path / "pairs" / "A", tmp_path / "pairs" / "B"
    for i in range(3):
        _png(a / f"{i}.png", _photo(i, 16, 20))
        Image.fromarray(_photo(10 + i, 16, 20)).save(_png(b / f"{i}.png", _photo(0)).with_suffix(".bmp"))
        (b / f"{i}.png").unlink()
    _png(a / "only_a.png", _photo(5))
    _png(b / "only_b.png", _photo(6))
    _png(a / "size.png", _photo(7, 16, 16))
    _png(b / "size.png", _photo(8, 16, 18))
    r = dt.combine(a, b, tmp_path / "ab", workers=1, progress=False)
    assert r.done == 3 and r.total == 6 and not r.ok
    text = "\n".join(r.failed)
    assert len(r.failed) == 3
    assert "only_a.png" in text and "only_b.png" in text and "size.png" in text and "differs" in text
    assert sorted(p.name for p in (tmp_path / "ab").iterdir()) == ["0.png", "1.png", "2.png"]
    ab1 = _read(tmp_path / "ab" / "1.png")
    assert (ab1[:, :20] == _photo(1, 16, 20)).all() and (ab1[:, 20:] == _photo(11, 16, 20)).all()

    r = dt.split_ab(tmp_path / "ab", tmp_path / "halves", workers=1, progress=False)
    assert r.ok and r.done == 3
    for i in range(3):
        assert (_read(tmp_path / "halves" / "A" / f"{i}.png") == _photo(i, 16, 20)).all()
        assert (_read(tmp_path / "halves" / "B" / f"{i}.png") == _photo(10 + i, 16, 20)).all()


def test_split_ab_reports_odd_width(tmp_path):
    _png(tmp_path / "in" / "odd.png", _photo(0, 8, 9))
    _png(tmp_path / "in" / "ok.png", _photo(0, 8, 10))
    r = dt.split_ab(tmp_path / "in", tmp_path / "out", workers=1, progress=False)
    assert r.done == 1 and len(r.failed) == 1 and "odd.png" in r.failed[0] and "odd" in r.failed[0]


def test_split_is_reproducible_complete_and_byte_exact(tmp_path):
    src = tmp_path / "all"
    for i in range(20):
        _png(src / f"{i:02d}.png", _photo(i, 8, 8))
    r = dt.split(src, tmp_path / "s1", (8, 1, 1), seed=3, workers=1, progress=False)
    assert r.ok and r.counts == {"train": 16, "val": 2, "test": 2}
    parts = {n: sorted(p.name for p in (tmp_path / "s1" / n).iterdir()) for n in ("train", "val", "test")}
    names = sum(parts.values(), [])
    assert sorted(names) == sorted(p.name for p in src.iterdir())     # every file once, none twice
    for n, files in parts.items():
        for f in files:
            assert (tmp_path / "s1" / n / f).read_bytes() == (src / f).read_bytes()
    dt.split(src, tmp_path / "s2", (8, 1, 1), seed=3, workers=2, progress=False)
    assert _snapshot(tmp_path / "s1") == _snapshot(tmp_path / "s2")      # same seed, same split
    dt.split(src, tmp_path / "s3", (8, 1, 1), seed=4, workers=1, progress=False)
    assert _snapshot(tmp_path / "s1") != _snapshot(tmp_path / "s3")


def test_split_keeps_pairs_together_and_reports_unreadable(tmp_path):
    src = tmp_path / "pairs"
    for i in range(10):
        _png(src / "A" / f"{i}.png", _photo(i, 8, 8))
        _png(src / "B" / f"{i}.png", _photo(50 + i, 8, 8))
    (src / "A" / "3.png").write_bytes(b"not a png")
    r = dt.split(src, tmp_path / "out", (0.5, 0.5), seed=0, workers=1, progress=False)
    assert len(r.failed) == 1 and "3.png" in r.failed[0] and r.done == 9
    for part in ("train", "val"):
        a = sorted(p.name for p in (tmp_path / "out" / part / "A").iterdir())
        b = sorted(p.name for p in (tmp_path / "out" / part / "B").iterdir())
        assert a == b and a
    assert sum(r.counts.values()) == 9


def test_split_counts_rounding():
    from img2img.datatools.folders import _split_counts
    assert _split_counts(5, [0.9, 0.1]) == [4, 1]        # a part that was asked for gets a file
    assert _split_counts(10, [0.8, 0.1, 0.1]) == [8, 1, 1]
    assert _split_counts(7, [1, 1]) == [4, 3]
    assert _split_counts(3, [1, 0, 0]) == [3, 0, 0]


# ---------------------------------------------------------------- the rules every operation keeps

OPS = {
    "resize": lambda s, o, **k: dt.resize(s, o, 8, **k),
    "grayscale": dt.grayscale,
    "blank": dt.blank,
    "edges": dt.edges,
    "split-ab": dt.split_ab,
    "split": dt.split,
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_input_untouched_output_never_inside_input_and_no_silent_overwrite(op, photos, tmp_path):
    before = _snapshot(photos)
    for bad_out in (photos, photos / "out"):
        with pytest.raises(DataError, match="input folder"):
            OPS[op](photos, bad_out, workers=1, progress=False)
    r = OPS[op](photos, tmp_path / "out", workers=1, progress=False)
    assert r.ok and r.done == 5
    written = _snapshot(tmp_path / "out")
    with pytest.raises(DataError, match="already exists.*--overwrite"):
        OPS[op](photos, tmp_path / "out", workers=1, progress=False)
    assert _snapshot(tmp_path / "out") == written
    victim = next(p for p in sorted((tmp_path / "out").rglob("*.png")))
    victim.write_bytes(b"stale")
    r = OPS[op](photos, tmp_path / "out", workers=1, progress=False, overwrite=True)
    assert r.ok and _snapshot(tmp_path / "out") == written
    assert _snapshot(photos) == before
    assert not [p for p in (tmp_path / "out").rglob(".*") if p.is_file()]   # no temporary files left


def test_output_landing_in_an_input_folder_is_refused(tmp_path):
    src = tmp_path / "data" / "A"
    _png(src / "x.png", _photo(0))
    with pytest.raises(DataError, match="inside the input folder"):     # out/A/x.png would be src/x.png
        dt.edges(src, tmp_path / "data", layout="folders", workers=1, progress=False)
    assert sorted(p.name for p in src.iterdir()) == ["x.png"]


def test_colliding_outputs_are_refused(tmp_path):
    _png(tmp_path / "in" / "x.png", _photo(0))
    _png(tmp_path / "in" / "x.bmp", _photo(1))
    with pytest.raises(DataError, match="would both be written"):
        dt.grayscale(tmp_path / "in", tmp_path / "out", ext="jpg", workers=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_bad_settings_are_one_line_errors(photos, tmp_path):
    with pytest.raises(ConfigError):
        dt.edges(photos, tmp_path / "o", low=0.5, high=0.1)
    with pytest.raises(ConfigError):
        dt.resize(photos, tmp_path / "o", 0)
    with pytest.raises(ConfigError):
        dt.split(photos, tmp_path / "o", (1, 1, 1, 1))
    with pytest.raises(ConfigError):
        dt.grayscale(photos, tmp_path / "o", ext="gif")
    with pytest.raises(DataError, match="no such"):
        dt.edges(tmp_path / "missing", tmp_path / "o")


# ---------------------------------------------------------------- command line

def test_cli_reports_unreadable_files_and_exits_nonzero(photos, tmp_path, capsys):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (photos / "empty.png").write_bytes(b"")
    rc = main(["data", "edges", str(photos), str(tmp_path / "out"), "--workers", "1", "--no-progress",
               "--thickness", "2", "--ext", "png"])
    cap = capsys.readouterr()
    assert rc == 1
    lines = cap.err.strip().splitlines()
    assert len(lines) == 2 and any("broken.jpg" in ln for ln in lines) and any("empty.png" in ln for ln in lines)
    assert "5 of 7 done" in cap.out and "2 failed" in cap.out
    assert len(list((tmp_path / "out").rglob("*.png"))) == 5


def test_cli_combine_forms_and_split(tmp_path, capsys):
    for i in range(4):
        _png(tmp_path / "p" / "A" / f"{i}.png", _photo(i, 8, 8))
        _png(tmp_path / "p" / "B" / f"{i}.png", _photo(i + 1, 8, 8))
    assert main(["data", "combine", str(tmp_path / "p"), str(tmp_path / "ab1"), "--no-progress"]) == 0
    assert main(["data", "combine", str(tmp_path / "p" / "A"), str(tmp_path / "p" / "B"), str(tmp_path / "ab2"),
                 "--no-progress", "--workers", "2"]) == 0
    assert _snapshot(tmp_path / "ab1") == _snapshot(tmp_path / "ab2")
    assert main(["data", "combine", str(tmp_path / "p" / "A"), str(tmp_path / "x")]) == 2   # no A/, B/ inside
    assert "expected A/ and B/" in capsys.readouterr().err
    assert main(["data", "split", str(tmp_path / "ab1"), str(tmp_path / "s"), "--ratios", "3", "1",
                 "--seed", "1", "--no-progress"]) == 0
    assert "train: 3, val: 1" in capsys.readouterr().out


@pytest.mark.parametrize("op", ["resize", "grayscale", "blank", "edges", "combine", "split-ab", "split", "download"])
def test_every_operation_has_help_with_an_example(op, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["data", op, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"img2img data {op}" in out
