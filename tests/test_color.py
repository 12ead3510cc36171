import numpy as np
import torch

from img2img import color


def reference_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] (..., 3) -> CIE Lab (D65), straight from the textbook formulas."""
    lin = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = np.array([[0.412453, 0.357580, 0.180423],
                  [0.212671, 0.715160, 0.072169],
                  [0.019334, 0.119193, 0.950227]])
    xyz = lin @ m.T / np.array([0.950456, 1.0, 1.088754])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    L = np.where(xyz[..., 1] > 0.008856, 116 * np.cbrt(xyz[..., 1]) - 16, 903.3 * xyz[..., 1])
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], -1)


def test_lab_matches_reference_formula_and_scaling():
    rng = np.random.default_rng(0)
    rgb = rng.random((16, 16, 3))
    net = color.rgb_to_lab_net(torch.from_numpy(rgb).permute(2, 0, 1).float())
    ref = reference_lab(rgb)
    got_L = (net[0].numpy() + 1) * 50
    got_ab = net[1:].permute(1, 2, 0).numpy() * 110
    assert np.abs(got_L - ref[..., 0]).max() < 0.05
    assert np.abs(got_ab - ref[..., 1:]).max() < 0.1
    assert net.min() >= -1.0001 and net.max() <= 1.0001


def test_known_colors():
    white = torch.ones(3, 1, 1)
    black = torch.zeros(3, 1, 1)
    assert torch.allclose(color.rgb_to_lab_net(white).flatten(), torch.tensor([1.0, 0.0, 0.0]), atol=2e-3)
    assert torch.allclose(color.rgb_to_lab_net(black).flatten(), torch.tensor([-1.0, 0.0, 0.0]), atol=2e-3)


def test_rgb_lab_rgb_round_trip():
    rgb = torch.rand(2, 3, 24, 24)
    back = color.lab_net_to_rgb(color.rgb_to_lab_net(rgb))
    assert (back - rgb).abs().max() < 2e-3


def test_colorization_split_merge_round_trip():
    rgb = torch.rand(1, 3, 8, 8)
    L, ab = color.split_l_ab(color.rgb_to_lab_net(rgb))
    assert L.shape == (1, 1, 8, 8) and ab.shape == (1, 2, 8, 8)
    assert (color.merge_l_ab(L, ab) - rgb).abs().max() < 2e-3
    gray = color.merge_l_ab(L, torch.zeros_like(ab))
    assert (gray[:, 0] - gray[:, 1]).abs().max() < 1e-3      # zero ab is neutral gray


def test_rgb_encode_decode():
    rgb = torch.rand(3, 4, 4)
    assert torch.allclose(color.decode(color.encode(rgb, "rgb"), "rgb"), rgb, atol=1e-6)
    assert color.encode(torch.zeros(3, 1, 1), "rgb").eq(-1).all()


def test_the_one_gray_conversion_equals_pils_for_every_colour():
    from PIL import Image

    from img2img.color import gray_uint8
    r, g, b = np.meshgrid(np.arange(256), np.arange(256), np.arange(256), indexing="ij")
    every = np.stack([r, g, b], -1).reshape(4096, 4096, 3).astype(np.uint8)
    assert np.array_equal(gray_uint8(every)[:, :, 0], np.asarray(Image.fromarray(every).convert("L")))
    one = every[:2, :2, :1]
    assert gray_uint8(one) is one
