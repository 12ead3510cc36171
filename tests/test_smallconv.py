"""The matrix-product convolutions of the U-Net's inner levels agree with torch's kernels."""
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
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)
    y = ours(torch.randn(1, 8, 4, 4, requires_grad=True))
    torch.relu_(y)                                             # the U-Net applies ReLU in place
    y.sum().backward()


def test_large_maps_use_torch_kernel():
    for kind, cin, cout, size in (("conv", 3, 8, 64), ("convT", 8, 8, 32)):
        _, ours = _pair(kind, cin, cout, False)
        y = ours(torch.randn(1, cin, size, size, requires_grad=True))   # 32x32 or 64x64 > SMALL_POSITIONS
        assert "MM" not in type(y.grad_fn).__name__


def test_unet_same_output_and_weight_gradients_either_way():
    import copy
    torch.manual_seed(1)
    G0 = UNetGenerator(3, 3, ngf=8, depth=8, dropout=0.0)          # plain nn.Conv2d: torch's kernels
    G = sc.use_matmul_convs(copy.deepcopy(G0))
    assert sum(type(m) in (sc.Conv2d, sc.ConvTranspose2d) for m in G.modules()) == 16
    assert G.state_dict().keys() == G0.state_dict().keys()
    x = torch.randn(2, 3, 256, 256)
    y = G(x)
    grads = torch.autograd.grad(y.square().mean(), list(G.parameters()))
    y0 = G0(x)
    grads0 = torch.autograd.grad(y0.square().mean(), list(G0.parameters()))
    torch.testing.assert_close(y, y0, rtol=1e-4, atol=1e-5)
    for a, b in zip(grads, grads0):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)
