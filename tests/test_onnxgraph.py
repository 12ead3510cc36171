"""ONNX graph rewrites: the sub-pixel form of the up-sampling layers computes the same function."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from img2img import export_onnx  # noqa: E402
from img2img.onnxgraph import subpixel_conv_transpose  # noqa: E402
from tiny_models import make_checkpoint  # noqa: E402


def _run(model: bytes, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def test_single_conv_transpose_with_bias_matches_torch():
    torch.manual_seed(0)
    layer = torch.nn.ConvTranspose2d(5, 3, 4, 2, 1)
    w = onnx.numpy_helper.from_array(layer.weight.detach().numpy(), "w")
    b = onnx.numpy_helper.from_array(layer.bias.detach().numpy(), "b")
    node = onnx.helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], name="up", kernel_shape=[4, 4],
                                 strides=[2, 2], pads=[1, 1, 1, 1])
    graph = onnx.helper.make_graph([node], "g", [onnx.helper.make_tensor_value_info("x", 1, [None, 5, None, None])],
                                   [onnx.helper.make_tensor_value_info("y", 1, [None, 3, None, None])], [w, b])
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    assert subpixel_conv_transpose(proto) == ["up"]
    ops = [n.op_type for n in proto.graph.node]
    assert ops == ["Conv"] * 4 + ["Concat", "DepthToSpace"]
    assert {i.name for i in proto.graph.initializer} == {"b", "w.subpixel00", "w.subpixel01", "w.subpixel10",
                                                         "w.subpixel11"}
    onnx.checker.check_model(proto)
    for shape in [(2, 5, 3, 7), (1, 5, 1, 1), (1, 5, 6, 4)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            ref = layer(x).numpy()
        got = _run(proto.SerializeToString(), x.numpy())
        assert got.shape == ref.shape == (shape[0], 3, 2 * shape[2], 2 * shape[3])
        assert np.abs(got - ref).max() < 1e-5


def test_other_conv_transposes_are_left_alone():
    w = onnx.numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")
    node = onnx.helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                 pads=[1, 1, 1, 1])
    graph = onnx.helper.make_graph([node], "g", [onnx.helper.make_tensor_value_info("x", 1, [1, 2, 4, 4])],
                                   [onnx.helper.make_tensor_value_info("y", 1, None)], [w])
    proto = onnx.helper.make_model(graph)
    assert subpixel_conv_transpose(proto) == []
    assert [n.op_type for n in proto.graph.node] == ["ConvTranspose"]


def test_rewritten_unet_export_matches_the_original(tmp_path):
    ckpt = make_checkpoint(tmp_path / "t.pt", seed=5)
    export_onnx(ckpt, tmp_path / "t.onnx", exporter="torchscript", subpixel=False)
    proto = onnx.load(str(tmp_path / "t.onnx"))
    before = proto.SerializeToString()
    n_up = sum(n.op_type == "ConvTranspose" for n in proto.graph.node)
    assert len(subpixel_conv_transpose(proto)) == n_up == 5
    assert not any(n.op_type == "ConvTranspose" for n in proto.graph.node)
    x = np.random.default_rng(0).random((2, 3, 64, 96), dtype=np.float32)
    a, b = _run(before, x), _run(proto.SerializeToString(), x)
    assert a.shape == b.shape == (2, 3, 64, 96) and np.abs(a - b).max() < 1e-5
