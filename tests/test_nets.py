import pytest
import torch

from img2img.nets import PatchDiscriminator, UNetGenerator, init_weights, set_norm_stats
from img2img.nets.norm import BatchNorm2d
from img2img.nets.patchgan import receptive_field


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_unet_256_parameter_count_and_shape():
    g = UNetGenerator(3, 3, ngf=64, depth=8)
    assert n_params(g) == 54_413_955          # "about 54.4M", as the reference U-Net
    assert len(g.down) == 8 and len(g.up) == 8
    g.eval()
    with torch.no_grad():
        y = g(torch.randn(1, 3, 256, 256))
    assert y.shape == (1, 3, 256, 256)
    assert y.abs().max() <= 1.0               # tanh output


def test_unet_depth_7_for_128_and_channels():
    g = UNetGenerator(1, 2, ngf=16, depth=7).eval()
    with torch.no_grad():
        y = g(torch.randn(2, 1, 128, 128))
    assert y.shape == (2, 2, 128, 128)


def test_unet_dropout_in_three_innermost_decoder_levels_only():
    g = UNetGenerator(3, 3, ngf=8, depth=8, dropout=0.5)
    has_dropout = [any(isinstance(m, torch.nn.Dropout) for m in level) for level in g.up]
    assert has_dropout == [True, True, True, False, False, False, False, False]   # innermost first
    g0 = UNetGenerator(3, 3, ngf=8, depth=8, dropout=0.0)
    assert not any(isinstance(m, torch.nn.Dropout) for m in g0.modules())


def test_unet_norm_placement():
    g = UNetGenerator(3, 3, ngf=8, depth=8)
    norms = [any(isinstance(m, torch.nn.BatchNorm2d) for m in level.modules()) for level in g.down]
    assert norms == [False, True, True, True, True, True, True, False]   # not on first nor innermost


def test_patchgan_30x30_map_and_70px_receptive_field():
    d = PatchDiscriminator(6, ndf=64, n_layers=3)
    assert d(torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    assert receptive_field(3) == 70
    # measure it: the gradient of one output logit touches a 70x70 input window
    d = init_weights(PatchDiscriminator(1, ndf=4, n_layers=3)).eval()
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    d(x)[0, 0, 5, 5].backward()
    rows = (x.grad[0, 0].abs().sum(1) > 0).nonzero().flatten()
    cols = (x.grad[0, 0].abs().sum(0) > 0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 <= 70 and cols.max() - cols.min() + 1 <= 70
    assert rows.max() - rows.min() + 1 >= 66        # border taps can be zero-weighted by padding only


def test_init_normal_002():
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(3, 3, ngf=32, depth=8))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    bn = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1.0) < 5e-3 and abs(bn.std().item() - 0.02) < 5e-3


def test_sample_stats_make_eval_batch_invariant():
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(3, 3, ngf=8, depth=5)).eval()
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        batched = g(x)
        alone = torch.cat([g(x[i:i + 1]) for i in range(8)])
    assert torch.allclose(batched, alone, atol=1e-5)
    # and it equals training-mode BatchNorm on a batch of one (the paper's test-time behaviour)
    g.train()
    for m in g.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    with torch.no_grad():
        assert torch.allclose(g(x[:1]), alone[:1], atol=1e-5)


def test_running_stats_switch():
    bn = BatchNorm2d(4, stats="running").eval()
    x = torch.randn(2, 4, 8, 8) * 3 + 1
    assert torch.allclose(bn(x), x / (1 + 1e-5) ** 0.5, atol=1e-4)     # fresh running stats: identity
    set_norm_stats(bn, "sample")
    y = bn(x)
    assert y.mean(dim=(2, 3)).abs().max() < 1e-5
    with pytest.raises(ValueError):
        BatchNorm2d(4, stats="bogus")


def test_pix2pix_upsampling_layers_start_without_checkerboard():
    import torch.nn as nn

    from img2img.families import make_config
    from img2img.families.pix2pix import Pix2Pix
    from img2img.nets.init import init_weights
    torch.manual_seed(0)
    G = Pix2Pix(make_config(pairs="unused", crop_size=32, load_size=36, ngf=8, ndf=8)).G
    ups = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(ups) == 5
    for m in ups:
        y = m(torch.ones(1, m.in_channels, 6, 6))[0, :, 2:-2, 2:-2]     # interior of a constant input
        assert torch.allclose(y, y[:, :1, :1].expand_as(y), atol=1e-6)  # constant: the phases agree
    plain = init_weights(nn.ConvTranspose2d(16, 4, 4, 2, 1))             # the paper's N(0, 0.02)
    y = plain(torch.ones(1, 16, 6, 6))[0, :, 2:-2, 2:-2]
    assert not torch.allclose(y, y[:, :1, :1].expand_as(y), atol=1e-4)
    assert 0.01 < ups[2].weight.std() < 0.03                            # same scale as N(0, 0.02)
