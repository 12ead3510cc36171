"""ONNX export: parity with torch, metadata, dynamic axes, ONNX translate = torch translate."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

import img2img.export as export_mod  # noqa: E402
from img2img import Translator, export_onnx, translate_folder  # noqa: E402
from img2img.cli import main  # noqa: E402
from img2img.config import ConfigError  # noqa: E402
from img2img.export import ExportError, wrap_generator  # noqa: E402
from img2img.inference import load_generator  # noqa: E402
from tiny_models import make_checkpoint, read, write_images  # noqa: E402


def _run(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x.numpy()})[0]


def test_lab_model_exports_rgb_in_rgb_out_with_dynamic_axes(tmp_path):
    ckpt = make_checkpoint(tmp_path / "lab.pt", color="lab")
    res = export_onnx(ckpt, tmp_path / "lab.onnx")              # the default (dynamo) exporter
    assert res.max_abs_diff <= 1e-4 and len(res.checked) == 3
    assert res.checked[2][2:] == (39, 23)                         # a size that is not a multiple of 32
    assert res.exporter == "dynamo" and not res.notes, res.notes
    proto = onnx.load(str(tmp_path / "lab.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["opset"] == str(res.opset) == "18"
    assert json.loads(meta["img2img_config"])["data"]["color"] == "lab"
    assert [i.name for i in proto.graph.input] == ["image"]
    # the U-Net's 5 up-sampling layers are written as sub-pixel convolutions (img2img.onnxgraph)
    ops = [n.op_type for n in proto.graph.node]
    assert "ConvTranspose" not in ops and ops.count("DepthToSpace") == 5 and meta["upsampling"].startswith("5 ")
    # another batch size and spatial size than the export used; compare with the torch wrapper
    G, cfg = load_generator(ckpt)
    x = torch.rand(3, 3, 64, 96, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = wrap_generator(G, cfg)(x).numpy()
    got = _run(tmp_path / "lab.onnx", x)
    assert got.shape == (3, 3, 64, 96) and np.abs(got - ref).max() <= 1e-4
    assert got.min() >= 0 and got.max() <= 1


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_raw_onnx_session_takes_any_size(tmp_path, exporter):
    """A plain onnxruntime session accepts sizes that are not multiples of 2^depth and returns the input's
    size: the same as the Translator's pad policy (torch), which pads to the multiple and crops back."""
    ckpt = make_checkpoint(tmp_path / "m.pt", seed=7)
    export_onnx(ckpt, tmp_path / "m.onnx", exporter=exporter)
    proto = onnx.load(str(tmp_path / "m.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert "any H and W" in meta["io"] and meta["size_multiple"] == "32" and "any_size" in meta
    tr = Translator.load(ckpt, device="cpu", policy="pad")
    g = torch.Generator().manual_seed(1)
    for shape in [(1, 3, 300, 200), (2, 3, 37, 50), (1, 3, 5, 33)]:
        x = torch.rand(*shape, generator=g)
        got = _run(tmp_path / "m.onnx", x)
        assert got.shape == shape
        ref = tr(x).numpy()
        assert np.abs(got - ref).max() <= 1e-4, shape
    # on a multiple of 32 the padding is a no-op: the plain U-Net's output
    x = torch.rand(1, 3, 64, 32, generator=g)
    assert np.abs(_run(tmp_path / "m.onnx", x) - tr(x).numpy()).max() <= 1e-4


def test_cyclegan_export_takes_any_size_with_its_own_multiple(tmp_path):
    """One direction of a CycleGAN model (ResNet generator, sizes multiples of 4): the raw graph takes
    sizes that are not multiples of 4, as the Translator's pad policy on that direction does."""
    ckpt = make_checkpoint(tmp_path / "c.pt", seed=8, kind="cyclegan")
    res = export_onnx(ckpt, tmp_path / "c.onnx", exporter="torchscript", direction="BtoA")
    assert res.checked[2][2:] == (39, 23) and res.max_abs_diff <= 1e-4
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "c.onnx")).metadata_props}
    assert meta["size_multiple"] == "4" and "multiple of 4" in meta["any_size"] and meta["direction"] == "BtoA"
    tr = Translator.load(ckpt, device="cpu", policy="pad", direction="BtoA")
    other = Translator.load(ckpt, device="cpu", policy="pad", direction="AtoB")
    g = torch.Generator().manual_seed(2)
    for shape in [(1, 3, 37, 50), (2, 3, 6, 9)]:
        x = torch.rand(*shape, generator=g)
        got = _run(tmp_path / "c.onnx", x)
        assert got.shape == shape and np.abs(got - tr(x).numpy()).max() <= 1e-4, shape
        assert np.abs(got - other(x).numpy()).max() > 1e-2            # the other generator differs


def test_onnx_translate_matches_torch_translate(tmp_path):
    ckpt = make_checkpoint(tmp_path / "col.pt", colorization=True, seed=3)
    export_onnx(ckpt, tmp_path / "col.onnx", exporter="torchscript")
    files = write_images(tmp_path / "in", [(37, 51), (32, 32), (90, 20), (64, 40)])
    (tmp_path / "in" / "broken.png").write_bytes(b"nope")
    for policy in ("resize", "pad"):
        s_t = translate_folder(ckpt, tmp_path / "in", tmp_path / f"torch_{policy}", policy=policy,
                               device="cpu", workers=0, progress=False, verbose=False)
        s_o = translate_folder(tmp_path / "col.onnx", tmp_path / "in", tmp_path / f"onnx_{policy}", policy=policy,
                               device="cpu", workers=0, progress=False, verbose=False)
        assert len(s_o.translated) == len(s_t.translated) == 4 and len(s_o.failed) == len(s_t.failed) == 1
        for f in files:
            rel = f.relative_to(tmp_path / "in")
            a, b = read(tmp_path / f"torch_{policy}" / rel), read(tmp_path / f"onnx_{policy}" / rel)
            assert a.shape == b.shape and np.abs(a - b).max() <= 1, rel   # at most one uint8 rounding step
    tr = Translator.load(tmp_path / "col.onnx")
    assert tr.backend.name == "onnx" and tr.cfg.data.colorization
    with pytest.raises(ConfigError, match="dropout"):
        Translator.load(tmp_path / "col.onnx", dropout_noise=True)


def test_export_refuses_to_overwrite_and_fails_loudly_on_mismatch(tmp_path, monkeypatch, capsys):
    ckpt = make_checkpoint(tmp_path / "rgb.pt")
    out = tmp_path / "m.onnx"
    out.write_bytes(b"precious")
    assert main(["export", str(ckpt), str(out), "--exporter", "torchscript"]) == 2
    assert out.read_bytes() == b"precious"
    monkeypatch.setattr(export_mod, "compare", lambda *a, **k: (3e-3, [(1, 3, 32, 32)]))
    with pytest.raises(ExportError, match="disagree"):
        export_onnx(ckpt, tmp_path / "bad.onnx", exporter="torchscript")
    assert not (tmp_path / "bad.onnx").exists() and not list(tmp_path.glob(".bad.onnx*"))
    assert main(["export", str(ckpt), str(tmp_path / "bad.onnx"), "--exporter", "torchscript"]) == 1
    assert "disagree" in capsys.readouterr().err


@pytest.mark.parametrize("kind,settings", [("dcgan", dict(image_size=32, output_nc=1)),
                                           ("mlp", dict(image_size=28, output_nc=1, mlp_hidden=32))])
def test_noise_models_export_noise_in_image_out(tmp_path, kind, settings):
    pytest.importorskip(f"img2img.nets.{kind}")
    ckpt = make_checkpoint(tmp_path / f"{kind}.pt", kind=kind, **settings)
    res = export_onnx(ckpt, tmp_path / f"{kind}.onnx", exporter="torchscript")
    assert res.max_abs_diff <= 1e-4
    G, cfg = load_generator(ckpt)
    z = torch.randn(5, cfg.family.z_dim, generator=torch.Generator().manual_seed(0))
    got = _run(tmp_path / f"{kind}.onnx", z)
    s = settings["image_size"]
    assert got.shape == (5, 3, s, s) and got.min() >= 0 and got.max() <= 1
    with torch.no_grad():
        assert np.abs(got - wrap_generator(G, cfg)(z).numpy()).max() <= 1e-4
