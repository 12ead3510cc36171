"""The matrix-product convolutions of the U-Net's inner levels agree with torch's kernels."""
import json

import pytest
import torch
import torch.nn as nn

from img2img.nets import UNetGenerator
from img2img.nets import smallconv as sc


def _pair(kind, cin, cout, bias, stride=2, padding=1):
    torch.manual_seed(0)
    if kind == "conv":
        ref, ours = nn.Conv2d(cin, cout, 4, stride, padding, bias=bias), sc.Conv2d(cin, cout, 4, stride, padding, bias=bias)
    else:
        ref, ours = (nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=bias),
                     sc.ConvTranspose2d(cin, cout, 4, stride, padding, bias=bias))
    ours.load_state_dict(ref.state_dict())
    return ref, ours


@pytest.mark.parametrize("kind,cin,cout,n,size,bias", [
    ("conv", 16, 24, 1, 2, False), ("conv", 16, 24, 3, 8, True), ("conv", 8, 8, 2, 16, False),
    ("conv", 8, 8, 1, 5, True),                               # odd size
    ("convT", 32, 16, 1, 1, False), ("convT", 32, 16, 4, 2, True), ("convT", 16, 8, 2, 8, False),
    ("convT", 8, 3, 2, 20, True), ("convT", 8, 3, 1, 20, True),    # the output layer, large maps
])
def test_matches_torch_forward_and_backward(kind, cin, cout, n, size, bias):
    ref, ours = _pair(kind, cin, cout, bias)
    x = torch.randn(n, cin, size, size, requires_grad=True)
    with sc.forced(True):
        y_ref, y = ref(x), ours(x)
    assert "MM" in type(y.grad_fn).__name__                  # the matrix path was taken
    assert y.shape == y_ref.shape and y.is_contiguous()
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
    g = torch.randn_like(y)
    params_ref = [x, ref.weight] + ([ref.bias] if bias else [])
    params = [x, ours.weight] + ([ours.bias] if bias else [])
    for a, b in zip(torch.autograd.grad(y_ref, params_ref, g), torch.autograd.grad(y, params, g)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_non_contiguous_input_and_in_place_activation():
    ref, ours = _pair("conv", 8, 8, False)
    x = torch.randn(1, 8, 8, 8).transpose(2, 3)               # not contiguous
    with sc.forced(True):
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)
        y = ours(torch.randn(1, 8, 4, 4, requires_grad=True))
        assert "MM" in type(y.grad_fn).__name__
    torch.relu_(y)                                             # the U-Net applies ReLU in place
    y.sum().backward()


def test_the_path_is_measured_once_per_shape_and_cached_per_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("IMG2IMG_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(sc, "_choices", {})
    monkeypatch.setattr(sc, "_loaded", False)
    calls = []
    monkeypatch.setattr(sc, "measure", lambda layer, shape, grad: calls.append((shape, grad)) or (1.0, 0.5))
    _, ours = _pair("conv", 16, 24, False)
    x = torch.randn(1, 16, 8, 8, requires_grad=True)
    assert "MM" in type(ours(x).grad_fn).__name__              # the matrix path measured faster ...
    ours(x)
    with torch.no_grad():
        ours(x)
    assert calls == [((1, 16, 8, 8), True), ((1, 16, 8, 8), False)]   # ... once per shape and grad mode
    saved = json.loads(sc.cache_path().read_text())
    assert saved["entries"][-1]["machine"] == sc.machine_key() and len(saved["entries"][-1]["choices"]) == 2
    monkeypatch.setattr(sc, "_choices", {})                    # a new process reads the file: no measuring
    monkeypatch.setattr(sc, "_loaded", False)
    assert "MM" in type(ours(x).grad_fn).__name__ and len(calls) == 2
    # torch's kernel where it measures faster; a tie goes to torch's
    monkeypatch.setattr(sc, "measure", lambda layer, shape, grad: calls.append(shape) or (1.0, 0.97))
    assert "MM" not in type(ours(torch.randn(1, 16, 6, 6, requires_grad=True)).grad_fn).__name__
    with sc.forced(True):
        assert "MM" in type(ours(torch.randn(1, 16, 6, 6, requires_grad=True)).grad_fn).__name__


@pytest.mark.parametrize("content", ["{not json", "[]", '{"version": 1, "entries": "x"}',
                                     '{"version": 1, "entries": [{"machine": {"cpu": "other"}, "choices": {}}]}',
                                     "FOREIGN", '{"version": 99, "entries": []}'])
def test_a_corrupt_or_foreign_cache_is_ignored_and_replaced(tmp_path, monkeypatch, content):
    monkeypatch.setenv("IMG2IMG_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(sc, "_choices", {})
    monkeypatch.setattr(sc, "_loaded", False)
    _, ours = _pair("conv", 16, 24, False)
    x = torch.randn(1, 16, 8, 8, requires_grad=True)
    key = sc._key(ours, (1, 16, 8, 8), True)
    if content == "FOREIGN":      # this machine's form, with a choice, but for another torch
        other = {**sc.machine_key(), "torch": "0.0"}
        content = json.dumps({"version": 1, "entries": [{"machine": other, "choices": {key: True}}]})
    sc.cache_path().write_text(content)
    calls = []
    monkeypatch.setattr(sc, "measure", lambda layer, shape, grad: calls.append(shape) or (0.5, 1.0))
    assert "MM" not in type(ours(x).grad_fn).__name__ and len(calls) == 1   # measured, not read
    saved = json.loads(sc.cache_path().read_text())
    assert saved["entries"][-1]["choices"] == {key: False}


def test_big_maps_and_other_dtypes_use_torch_kernel_unmeasured(monkeypatch):
    monkeypatch.setattr(sc, "measure", lambda *a, **k: pytest.fail("measured"))
    _, ours = _pair("conv", 3, 8, False)
    assert "MM" not in type(ours(torch.randn(1, 3, 300, 300, requires_grad=True)).grad_fn).__name__
    assert ours.double()(torch.randn(1, 3, 8, 8, dtype=torch.float64)).dtype == torch.float64


def test_prepare_says_how_many_layers_take_each_path(monkeypatch, tmp_path):
    monkeypatch.setenv("IMG2IMG_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(sc, "_choices", {})
    monkeypatch.setattr(sc, "_loaded", False)
    monkeypatch.setattr(sc, "measure", lambda layer, shape, grad: (1.0, 0.5) if shape[2] <= 2 else (0.5, 1.0))
    G = sc.use_matmul_convs(UNetGenerator(3, 3, ngf=4, depth=5, dropout=0.0))
    before = {k: v.clone() for k, v in G.state_dict().items()}
    G.train()
    line = sc.prepare(G, (1, 3, 32, 32))
    assert all(m.training for m in G.modules())                                 # mode restored
    assert line.startswith("CPU convolutions: 3 of 10 layers as matrix products, 7 on torch's kernels"), line
    assert "measured 10" in line
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())   # BN statistics untouched
    monkeypatch.setattr(sc, "_choices", {})
    monkeypatch.setattr(sc, "_loaded", False)
    assert "10 from the cache" in sc.prepare(G, (1, 3, 32, 32))
    assert sc.prepare(UNetGenerator(3, 3, ngf=4, depth=5), (1, 3, 32, 32)) is None


def test_unet_same_output_and_weight_gradients_either_way():
    import copy
    torch.manual_seed(1)
    G0 = UNetGenerator(3, 3, ngf=8, depth=8, dropout=0.0)          # plain nn.Conv2d: torch's kernels
    G = sc.use_matmul_convs(copy.deepcopy(G0))
    assert sum(type(m) in (sc.Conv2d, sc.ConvTranspose2d) for m in G.modules()) == 16
    assert G.state_dict().keys() == G0.state_dict().keys()
    x = torch.randn(2, 3, 256, 256)
    with sc.forced(True):
        y = G(x)
        grads = torch.autograd.grad(y.square().mean(), list(G.parameters()))
    y0 = G0(x)
    grads0 = torch.autograd.grad(y0.square().mean(), list(G0.parameters()))
    torch.testing.assert_close(y, y0, rtol=1e-4, atol=1e-5)
    for a, b in zip(grads, grads0):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)
