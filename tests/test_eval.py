"""img2img eval: metrics consistent with a direct computation, results.json and index.html."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from kornia.metrics import psnr, ssim
from PIL import Image

from conftest import TINY, write_ab
from img2img import Translator, evaluate, train
from img2img.cli import main
from img2img.config import ConfigError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny pix2pix model trained for a few steps on B -> A, and its data (with a shorter pair)."""
    root = tmp_path_factory.mktemp("eval")
    pairs = write_ab(root / "pairs", n=5, size=32, seed=3)
    write_ab(root / "pairs" / "short", n=1, size=32, height=20, seed=4)
    run = train(pairs=str(pairs), out=str(root / "run"), direction="BtoA", max_steps=3, **TINY)
    return run, pairs


def _halves(path):
    ab = np.asarray(Image.open(path).convert("RGB"))
    w = ab.shape[1] // 2
    return ab[:, :w], ab[:, w:]


def _t(arr):
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255


def test_results_match_a_direct_computation(trained, tmp_path):
    run, pairs = trained
    res = evaluate(run, pairs, tmp_path / "report", device="cpu", workers=0, progress=False)
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert saved["l1"] == pytest.approx(res["l1"]) and saved["count"] == 6 == len(saved["pairs"])
    assert saved["direction"] == "BtoA"                       # from the checkpoint's config
    tr = Translator.load(run, device="cpu")
    for entry in saved["pairs"]:
        a, b = _halves(pairs / entry["name"])
        inp, target = _t(b), _t(a)                            # BtoA: B is the input
        out = tr(inp)
        assert out.shape == inp.shape
        o, t = (F.interpolate(v[None], size=(32, 32), mode="bicubic", align_corners=False,
                              antialias=True).clamp(0, 1) for v in (out, target))
        assert entry["l1"] == pytest.approx(float((o - t).abs().mean()), abs=1e-5)
        assert entry["psnr"] == pytest.approx(float(psnr(o, t, 1.0)), abs=1e-3)
        assert entry["ssim"] == pytest.approx(float(ssim(o, t, 11).mean()), abs=1e-5)
        thumb = np.asarray(Image.open(tmp_path / "report" / entry["input"]))
        if b.shape[0] == 32:
            assert np.array_equal(thumb, b)                   # the input column shows the B half
        for k in ("output", "target"):
            assert (tmp_path / "report" / entry[k]).is_file()
    for k in ("l1", "psnr", "ssim"):
        assert saved[k] == pytest.approx(np.mean([e[k] for e in saved["pairs"]]))
    assert 0 < saved["l1"] < 1 and 0 < saved["psnr"] < 100 and -1 < saved["ssim"] < 1

    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count("<tr><td class=name>") == 6
    assert f"{saved['psnr']:.2f}" in page and "short/0.png" in page
    for e in saved["pairs"]:
        assert f'src="{e["output"]}"' in page


def test_direction_override_bad_pairs_and_refusals(trained, tmp_path, capsys):
    run, pairs = trained
    data = tmp_path / "data"
    write_ab(data, n=3, size=32, seed=5)
    (data / "bad.png").write_bytes(b"broken")
    rc = main(["eval", str(run), "--pairs", str(data), "--out", str(tmp_path / "r"), "--direction", "AtoB",
               "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "bad.png" in err and "1 pair(s) skipped" in err   # counted, exit status says so
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert res["direction"] == "AtoB" and res["count"] == 3 and len(res["skipped"]) == 1
    a, _ = _halves(data / "0.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "r" / res["pairs"][0]["input"])), a)
    # an existing report is not replaced, and the data folder is never written into
    with pytest.raises(ConfigError, match="exists"):
        evaluate(run, data, tmp_path / "r", device="cpu", progress=False)
    with pytest.raises(ConfigError, match="inside the data folder"):
        evaluate(run, data, data / "report", device="cpu", progress=False)
    assert not (data / "report").exists()
