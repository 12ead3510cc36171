"""int8 quantization of exported image-to-image models (pix2pix, CycleGAN): the file, its accuracy gate, bad inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from conftest import write_ab  # noqa: E402
from img2img import Translator, export_onnx  # noqa: E402
from img2img.checkpoint import CheckpointError  # noqa: E402
from img2img.cli import main  # noqa: E402
from img2img.config import ConfigError  # noqa: E402
from img2img.data.io import DataError  # noqa: E402
from img2img.metrics import psnr_each as psnr  # noqa: E402
from img2img.quantize import QuantizeError, load_inputs, quantize_onnx  # noqa: E402
from tiny_models import make_checkpoint, write_images  # noqa: E402


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("q")
    ckpt = make_checkpoint(d / "tiny.pt", seed=1)
    export_onnx(ckpt, d / "tiny.onnx", exporter="torchscript")
    write_images(d / "calib", [(40, 30), (32, 32), (64, 48), (50, 50), (33, 70), (80, 60)], seed=2)
    write_images(d / "held", [(45, 35), (32, 64), (70, 40)], seed=3)
    return d


def _run(path, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def test_int8_file_is_written_runs_and_stays_close_to_float(float_model, tmp_path):
    out = tmp_path / "m.int8.onnx"
    r = quantize_onnx(float_model / "tiny.onnx", out, images=float_model / "calib",
                      held_out_images=float_model / "held", threshold=30)
    assert out.is_file() and r.path == out and r.images == 6 and r.held_out_images == 3
    proto = onnx.load(str(out))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops                   # really quantized
    assert "ConvTranspose" not in ops and {"DepthToSpace", "Conv"} <= ops    # up-sampling as sub-pixel convs
    weights = {i.name: i for i in proto.graph.initializer}
    int8 = [w for w in weights.values() if w.data_type == onnx.TensorProto.INT8 and len(w.dims) == 4]
    assert len(int8) == 5 + 5 * 4 - 1 - 4    # depth 5: every conv but the input layer and the output layer's 4
    meta = {p.key: p.value for p in proto.metadata_props}
    rec = json.loads(meta["quantization"])
    assert len(rec["float_nodes"]) == 5
    convs = {n.name: n for n in proto.graph.node if n.op_type == "Conv"}
    for name in rec["float_nodes"]:                      # float weights straight into the conv
        assert weights[convs[name].input[1]].data_type == onnx.TensorProto.FLOAT
    assert "img2img_config" in meta and rec["psnr_mean"] == pytest.approx(r.psnr_mean, abs=0.01)
    # the recorded PSNR is what the files give on the calibration images
    tr = Translator.load(float_model / "tiny.onnx")
    x = load_inputs(tr.cfg, images=float_model / "calib")
    p = psnr(_run(out, x), _run(float_model / "tiny.onnx", x))
    assert p.mean() == pytest.approx(r.psnr_mean, abs=1e-3) and p.min() == pytest.approx(r.psnr_min, abs=1e-3)
    assert 30 <= r.psnr_min <= r.psnr_mean < 100                           # close, but not identical
    # any size and batch, through the Translator like any export
    y = Translator.load(out)(torch.rand(2, 3, 70, 50, generator=torch.Generator().manual_seed(0)))
    assert y.shape == (2, 3, 70, 50) and 0 <= float(y.min()) and float(y.max()) <= 1


def test_psnr_gate_refuses_and_writes_nothing(float_model, tmp_path):
    out = tmp_path / "sub" / "m.int8.onnx"
    with pytest.raises(QuantizeError, match=r"below the 99 dB threshold; nothing written") as e:
        quantize_onnx(float_model / "tiny.onnx", out, images=float_model / "calib", threshold=99)
    assert "\n" not in str(e.value)
    assert not out.exists() and not any(tmp_path.rglob("*.onnx*"))


def test_calibrates_on_the_input_sides_of_pairs(tmp_path):
    ckpt = make_checkpoint(tmp_path / "t.pt", seed=2, direction="BtoA")
    export_onnx(ckpt, tmp_path / "t.onnx", exporter="torchscript")
    write_ab(tmp_path / "pairs", n=5, size=40)
    r = quantize_onnx(tmp_path / "t.onnx", tmp_path / "t8.onnx", data=tmp_path / "pairs", n_images=3,
                      threshold=0)
    assert r.images == 3 and np.isfinite(r.psnr_mean)
    cfg = Translator.load(tmp_path / "t.onnx").cfg
    x = load_inputs(cfg, data=tmp_path / "pairs", limit=2)
    assert x.shape == (2, 3, 32, 32) and x.dtype == np.float32
    # BtoA: the inputs are the right halves (the inverted images of conftest.write_ab)
    from PIL import Image
    ab = np.asarray(Image.open(sorted((tmp_path / "pairs").iterdir())[0]).convert("RGB"))
    right = torch.from_numpy(ab[:, 40:].copy()).permute(2, 0, 1).float()[None] / 255
    right = torch.nn.functional.interpolate(right, size=(32, 32), mode="bicubic", antialias=True).clamp(0, 1)
    assert np.abs(x[0] - right[0].numpy()).max() < 1e-5


def test_bad_inputs_give_one_line_errors(float_model, tmp_path):
    src = float_model / "tiny.onnx"
    calib = float_model / "calib"
    cases = [
        (dict(model=tmp_path / "missing.onnx", out=tmp_path / "o.onnx", images=calib), CheckpointError,
         "no such ONNX file"),
        (dict(model=src, out=tmp_path / "o.txt", images=calib), ConfigError, "must end in .onnx"),
        (dict(model=src, out=src, images=calib, overwrite=True), ConfigError, "would replace the float model"),
        (dict(model=src, out=tmp_path / "o.onnx", images=tmp_path / "nope"), DataError, "no such file or folder"),
        (dict(model=src, out=tmp_path / "o.onnx"), ConfigError, "training data it names"),
        (dict(model=src, out=tmp_path / "o.onnx", images=calib, threshold=float("nan")), ConfigError,
         "threshold"),
        (dict(model=src, out=tmp_path / "o.onnx", images=calib, fmt="fp4"), ConfigError, "format"),
    ]
    (tmp_path / "empty").mkdir()
    cases.append((dict(model=src, out=tmp_path / "o.onnx", images=tmp_path / "empty"), DataError, "no images"))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    cases.append((dict(model=tmp_path / "junk.onnx", out=tmp_path / "o.onnx", images=calib), CheckpointError,
                  "not an ONNX file"))
    plain = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 8, 8])]))
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    cases.append((dict(model=tmp_path / "plain.onnx", out=tmp_path / "o.onnx", images=calib), CheckpointError,
                  "not an img2img ONNX export"))
    for kwargs, err, text in cases:
        with pytest.raises(err, match=text) as e:
            quantize_onnx(**kwargs)
        assert "\n" not in str(e.value), kwargs
    assert not (tmp_path / "o.onnx").exists() and not (tmp_path / "o.txt").exists()


def test_refuses_an_existing_output_and_an_int8_input(float_model, tmp_path):
    out = tmp_path / "m8.onnx"
    quantize_onnx(float_model / "tiny.onnx", out, images=float_model / "calib", threshold=0)
    before = out.read_bytes()
    with pytest.raises(ConfigError, match="exists; pass --overwrite"):
        quantize_onnx(float_model / "tiny.onnx", out, images=float_model / "calib", threshold=0)
    assert out.read_bytes() == before
    with pytest.raises(ConfigError, match="already quantized"):
        quantize_onnx(out, tmp_path / "again.onnx", images=float_model / "calib")


def test_dcgan_exports_are_refused(tmp_path):
    ckpt = make_checkpoint(tmp_path / "g.pt", kind="dcgan", image_size=32)
    export_onnx(ckpt, tmp_path / "g.onnx", exporter="torchscript")
    write_images(tmp_path / "imgs", [(32, 32)])
    with pytest.raises(ConfigError, match="a dcgan model draws from noise; int8 quantization is for image-to-image"):
        quantize_onnx(tmp_path / "g.onnx", tmp_path / "g8.onnx", images=tmp_path / "imgs")


def test_cyclegan_export_quantizes_one_direction_calibrated_on_its_domain(tmp_path):
    """A CycleGAN BtoA export: calibrated on the B/ images of an unpaired folder; the ResNet's
    ConvTransposes stay float, its convolutions become int8; any size still works."""
    ckpt = make_checkpoint(tmp_path / "c.pt", seed=6, kind="cyclegan")
    export_onnx(ckpt, tmp_path / "c.onnx", exporter="torchscript", direction="BtoA")
    write_images(tmp_path / "u" / "A", [(40, 30), (32, 32)], seed=2)
    write_images(tmp_path / "u" / "B", [(50, 50), (33, 70), (80, 60)], seed=3)
    r = quantize_onnx(tmp_path / "c.onnx", tmp_path / "c8.onnx", data=tmp_path / "u", threshold=0)
    assert r.images == 3 and np.isfinite(r.psnr_mean)                       # the three B images
    cfg = Translator.load(tmp_path / "c.onnx").cfg
    b = load_inputs(cfg, images=tmp_path / "u" / "B")
    assert np.array_equal(load_inputs(cfg, data=tmp_path / "u", direction="BtoA"), b)
    assert len(load_inputs(cfg, data=tmp_path / "u", direction="AtoB")) == 2
    p = psnr(_run(tmp_path / "c8.onnx", b), _run(tmp_path / "c.onnx", b))
    assert p.mean() == pytest.approx(r.psnr_mean, abs=1e-3) and p.mean() < 100
    proto = onnx.load(str(tmp_path / "c8.onnx"))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("ConvTranspose") == 2 and "QuantizeLinear" in ops
    int8 = [w for w in proto.graph.initializer if w.data_type == onnx.TensorProto.INT8 and len(w.dims) == 4]
    assert len(int8) == ops.count("Conv") - 2                                 # all but the first and last
    meta = {m.key: m.value for m in proto.metadata_props}
    assert meta["direction"] == "BtoA"
    tr = Translator.load(tmp_path / "c8.onnx")
    assert tr.direction == "BtoA"
    y = _run(tmp_path / "c8.onnx", np.random.default_rng(0).random((1, 3, 37, 50), dtype=np.float32))
    assert y.shape == (1, 3, 37, 50)


def test_cli_export_quantize_int8(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "t.pt", seed=4)
    write_images(tmp_path / "calib", [(40, 30), (32, 32), (64, 48)])
    out = tmp_path / "t8.onnx"
    assert main(["export", str(ckpt), str(out), "--exporter", "torchscript", "--quantize", "int8",
                 "--calibration", str(tmp_path / "calib"), "--min-psnr", "20"]) == 0
    err = capsys.readouterr().err
    assert "float model exported" in err and "int8 vs float: PSNR mean" in err
    assert "quantization" in {p.key for p in onnx.load(str(out)).metadata_props}
    # above what int8 reaches: exit status 1, one error line, nothing written
    assert main(["export", str(ckpt), str(tmp_path / "no.onnx"), "--exporter", "torchscript", "--quantize", "int8",
                 "--calibration", str(tmp_path / "calib"), "--min-psnr", "99"]) == 1
    err = capsys.readouterr().err
    assert "img2img export: error:" in err and "below the 99 dB threshold" in err
    assert not (tmp_path / "no.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib", "t.pt", "t8.onnx"]
