from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import shapes_image, target_of, write_a_b, write_ab
from img2img.data import DataError, PairedDataset, collate, scan_pairs
from img2img.data.io import load_image


def ds(root, **kw):
    base = dict(load_size=36, crop_size=32)
    base.update(kw)
    return PairedDataset(root, **base)


def test_ab_layout_direction_and_values(tmp_path):
    root = write_ab(tmp_path / "p", n=3)
    d = ds(root, resize=True, crop=False, flip=False)
    assert d.scan.layout == "AB" and len(d) == 3
    x = d[0]
    assert x["A"].shape == (3, 32, 32) and x["B"].shape == (3, 32, 32)
    assert -1 <= x["A"].min() and x["A"].max() <= 1
    assert torch.allclose(x["A"], -x["B"], atol=2 / 255 + 1e-6)          # B is inverted A
    r = ds(root, resize=True, crop=False, flip=False, direction="BtoA")[0]
    assert torch.equal(r["A"], x["B"]) and torch.equal(r["B"], x["A"])


def test_a_b_folder_layout_recursive_and_name_matching(tmp_path):
    root = write_a_b(tmp_path / "p", n=4)
    (root / "A" / "sub").mkdir()
    (root / "B" / "sub").mkdir()
    rng = np.random.default_rng(5)
    a = shapes_image(rng, 32)
    Image.fromarray(a).save(root / "A" / "sub" / "deep.bmp")
    Image.fromarray(target_of(a)).save(root / "B" / "sub" / "deep.webp", lossless=True)
    d = ds(root, crop=False, flip=False)
    assert d.scan.layout == "A/B" and len(d) == 5
    assert sorted(p.name for p in d.pairs) == sorted(["img0", "img1", "img2", "img3", "sub/deep"])
    x = d[[p.name for p in d.pairs].index("sub/deep")]
    assert torch.allclose(x["A"], -x["B"], atol=3 / 255)


def test_odd_sized_ab_files_just_work(tmp_path):
    root = write_ab(tmp_path / "p", n=2, size=64, height=57)           # 128x57 AB files
    d = ds(root, load_size=72, crop_size=64)
    x = d[1]
    assert x["A"].shape == (3, 64, 64) and x["B"].shape == (3, 64, 64)


def test_jitter_is_identical_for_a_and_b(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        a = shapes_image(rng, 48)
        Image.fromarray(np.concatenate([a, a], 1)).save(root / f"{i}.png")   # B == A
    d = ds(root, load_size=60, crop_size=48, flip=True)
    crops = set()
    for epoch in range(3):
        d.epoch = epoch
        for i in range(len(d)):
            x = d[i]
            assert torch.equal(x["A"], x["B"])            # same crop and flip for both halves
            crops.add(x["A"].sum().item())
    assert len(crops) > 4                                   # and the jitter really varies


def test_augmentation_is_a_function_of_seed_epoch_index(tmp_path):
    root = write_ab(tmp_path / "p", n=3, size=40)
    d1, d2 = ds(root, load_size=48, crop_size=32, seed=3), ds(root, load_size=48, crop_size=32, seed=3)
    d1.epoch = d2.epoch = 2
    assert torch.equal(d1[1]["A"], d2[1]["A"])
    d2.epoch = 1
    assert any(not torch.equal(d1[i]["A"], d2[i]["A"]) for i in range(3))


def test_channel_conversion_and_lab(tmp_path):
    root = write_ab(tmp_path / "p", n=2)
    g = ds(root, input_nc=1, crop=False)[0]
    assert g["A"].shape == (1, 32, 32) and g["B"].shape == (3, 32, 32)
    lab = ds(root, color="lab", crop=False, flip=False)[0]
    assert lab["A"].shape == (3, 32, 32) and lab["A"][0].min() >= -1.001 and lab["A"][0].max() <= 1.001
    c = ds(root, colorization=True, crop=False)[0]
    assert c["A"].shape == (1, 32, 32) and c["B"].shape == (2, 32, 32)


def test_gray_rgba_palette_16bit_images_are_converted(tmp_path):
    arr = np.full((8, 8, 4), 255, np.uint8)
    arr[..., :3] = 10
    arr[:4, :, 3] = 0                                       # top half fully transparent
    Image.fromarray(arr, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((8, 8), 77, np.uint8), "L").save(tmp_path / "gray.png")
    Image.fromarray(np.full((8, 8), 2, np.uint8), "L").convert("P").save(tmp_path / "pal.png")
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "deep.png")
    rgba = load_image(tmp_path / "rgba.png")
    assert rgba.shape == (8, 8, 3) and (rgba[:4] == 255).all() and (rgba[4:] == 10).all()   # on white
    assert (load_image(tmp_path / "gray.png") == 77).all()
    assert load_image(tmp_path / "pal.png").shape == (8, 8, 3)
    assert (load_image(tmp_path / "deep.png") == 255).all()
    assert load_image(tmp_path / "gray.png", channels=1).shape == (8, 8, 1)


# -- bad input: one line naming the file -------------------------------------------------

def one_line(e):
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_undecodable_file_is_named(tmp_path):
    root = write_ab(tmp_path / "p", n=2)
    (root / "broken.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(DataError) as e:
        scan_pairs(root)
    assert "broken.jpg" in one_line(e) and "--skip-bad" in one_line(e)
    s = scan_pairs(root, skip_bad=True)
    assert len(s.pairs) == 2 and len(s.skipped) == 1


def test_truncated_file_is_refused_up_front_or_skipped(tmp_path):
    root = write_ab(tmp_path / "p", n=3, size=96, ext="jpg")
    data = (root / "1.jpg").read_bytes()
    (root / "1.jpg").write_bytes(data[: len(data) * 3 // 4])      # header fine, data cut
    with pytest.raises(DataError) as e:
        ds(root)                                                  # decoded up front (cache)
    assert "1.jpg" in one_line(e)
    d = ds(root, skip_bad=True)
    assert len(d) == 2 and len(d.scan.skipped) == 1
    # without the cache the bad file is found mid-epoch: reported in the batch, never raised
    d = ds(root, cache=False)
    items = [d[i] for i in range(len(d))]
    b = collate(items)
    assert len(b["errors"]) == 1 and "1.jpg" in b["errors"][0] and b["A"].shape[0] == 2


def test_odd_width_ab_file(tmp_path):
    root = write_ab(tmp_path / "p", n=1)
    Image.fromarray(np.zeros((20, 41, 3), np.uint8)).save(root / "odd.png")
    with pytest.raises(DataError) as e:
        scan_pairs(root)
    assert "odd.png" in one_line(e) and "odd" in one_line(e)


def test_mismatched_a_b_names(tmp_path):
    root = write_a_b(tmp_path / "p", n=3)
    (root / "B" / "img1.jpg").rename(root / "B" / "other.jpg")
    with pytest.raises(DataError) as e:
        scan_pairs(root)
    msg = one_line(e)
    assert "img1" in msg and "no matching file" in msg
    assert len(scan_pairs(root, skip_bad=True).pairs) == 2


def test_a_b_size_mismatch(tmp_path):
    root = write_a_b(tmp_path / "p", n=2)
    Image.fromarray(np.zeros((30, 32, 3), np.uint8)).save(root / "B" / "img0.jpg")
    with pytest.raises(DataError) as e:
        scan_pairs(root)
    assert "img0" in one_line(e) and "differs" in one_line(e)


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as e:
        scan_pairs(tmp_path / "empty")
    assert "empty" in one_line(e) and "no usable" in one_line(e)
    with pytest.raises(DataError) as e:
        scan_pairs(tmp_path / "nope")
    assert "nope" in one_line(e)


def test_training_and_serve_decode_every_mode_alike(tmp_path):
    """One decoder: what the loader trains on is what the web page translates (16-bit rounded)."""
    from img2img.serve import decode_upload
    rng = np.random.default_rng(0)
    images = {"rgba.png": Image.fromarray(rng.integers(0, 256, (6, 5, 4), dtype=np.uint8), "RGBA"),
              "la.png": Image.fromarray(rng.integers(0, 256, (6, 5, 2), dtype=np.uint8), "LA"),
              "g16.png": Image.fromarray(np.array([[0, 32768, 65535, 1000, 300]] * 6, dtype=np.uint16)),
              "pal.png": Image.fromarray(rng.integers(0, 256, (6, 5), dtype=np.uint8), "L").convert("P"),
              "cmyk.jpg": Image.new("CMYK", (5, 6), (10, 200, 30, 0)),
              "rgb.png": Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))}
    for name, im in images.items():
        im.save(tmp_path / name)
        assert np.array_equal(load_image(tmp_path / name), np.asarray(decode_upload(tmp_path / name))), name
    assert load_image(tmp_path / "g16.png")[0, :, 0].tolist() == [0, 128, 255, 4, 1]
