"""Issue 28's levers: the multi-scale discriminator, D feature matching, the decoders' up-sampling
choice, the blur before D's strides, and the texture figure of eval."""
import json

import pytest
import torch

from conftest import TINY, write_ab, write_a_b
from img2img import train
from img2img.checkpoint import load_checkpoint
from img2img.cli import main
from img2img.config import ConfigError
from img2img.gan import objectives
from img2img.metrics import texture
from img2img.nets import MultiscaleDiscriminator, PatchDiscriminator, ResnetGenerator, UNetGenerator, init_weights
from img2img.nets.patchgan import feature_matching
from img2img.nets.upsample import UPSAMPLING


def test_the_multiscale_discriminator_judges_each_scale_with_its_own_patchgan():
    D = MultiscaleDiscriminator(6, ndf=8, n_layers=3, norm="instance", num_d=3)
    outs = D(torch.randn(2, 6, 128, 128))
    assert [o.shape[-1] for o in outs] == [14, 6, 2]          # 128, 64, 32 px inputs
    assert sum(p.numel() for p in D.parameters()) == 3 * sum(p.numel() for p in PatchDiscriminator(6, 8, 3, "instance").parameters())
    x = torch.randn(1, 6, 128, 128)
    feats = D.features(x)
    assert len(feats) == 3 and all(len(f) == 5 for f in feats)   # 4 LeakyReLUs + the logits
    assert torch.equal(feats[0][-1], D.scales[0](x))
    assert torch.equal(feats[1][-1], D(x)[1])


def test_feature_matching_is_zero_for_identical_features_and_grows_with_the_difference():
    D = PatchDiscriminator(6, ndf=8, norm="instance")
    x = torch.randn(1, 6, 64, 64)
    assert feature_matching(D.features(x), D.features(x)).item() == 0.0
    near = feature_matching(D.features(x + 0.01 * torch.randn_like(x)), D.features(x)).item()
    far = feature_matching(D.features(x + 1.0 * torch.randn_like(x)), D.features(x)).item()
    assert 0 < near < far
    Dm = MultiscaleDiscriminator(6, ndf=8, norm="instance", num_d=2)
    assert feature_matching(Dm.features(x), Dm.features(x)).item() == 0.0


def test_per_scale_objective_averages_the_scales_and_one_scale_is_the_plain_objective():
    d_loss, _ = objectives.get("lsgan")
    r, f = torch.randn(1, 1, 6, 6), torch.randn(1, 1, 6, 6)
    r2, f2 = torch.randn(1, 1, 2, 2), torch.randn(1, 1, 2, 2)
    assert objectives.per_scale(d_loss, r, f).item() == d_loss(r, f).item()
    both = objectives.per_scale(d_loss, [r, r2], [f, f2]).item()
    assert both == pytest.approx((d_loss(r, f).item() + d_loss(r2, f2).item()) / 2)


@pytest.mark.parametrize("mode", UPSAMPLING)
def test_every_upsampling_keeps_the_generators_shapes(mode):
    for G, x in ((UNetGenerator(3, 3, ngf=8, depth=5, upsample=mode), torch.randn(1, 3, 32, 32)),
                 (ResnetGenerator(3, 3, ngf=8, n_blocks=2, upsample=mode), torch.randn(1, 3, 20, 28))):
        assert G.eval()(x).shape == x.shape


def test_pixelshuffle_starts_without_a_checkerboard_and_resize_conv_has_none():
    for mode in ("pixelshuffle", "resize-conv"):
        G = init_weights(UNetGenerator(3, 3, ngf=8, depth=5, norm="none", dropout=0, upsample=mode)).eval()
        with torch.no_grad():
            y = G(torch.zeros(1, 3, 32, 32))
        # a constant input: away from the borders, every 2x2 phase of the output is the same
        inner = y[..., 8:-8, 8:-8]
        assert (inner[..., 0::2, :] - inner[..., 1::2, :]).abs().max() < 1e-6, mode
        assert (inner[..., :, 0::2] - inner[..., :, 1::2]).abs().max() < 1e-6, mode


def test_texture_is_near_one_for_noise_and_high_for_a_periodic_grid():
    g = torch.Generator().manual_seed(0)
    noise = [texture(torch.rand(3, 128, 128, generator=g)) for _ in range(4)]
    assert all(0.7 < v < 1.4 for v in noise)
    yy, xx = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    smooth = 0.5 + 0.3 * torch.sin(yy / 20.0) * torch.cos(xx / 13.0)
    grid = smooth + 0.03 * (((yy % 2) ^ (xx % 2)) * 2 - 1) + 0.02 * (((yy // 2 % 2) ^ (xx // 4 % 2)) * 2 - 1)
    assert texture(grid.expand(3, -1, -1)) > 3 * texture(smooth.expand(3, -1, -1))
    assert texture(torch.rand(3, 8, 8)) == 1.0


def test_the_new_options_train_resume_exactly_translate_export_and_eval_report_texture(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=4, size=32)
    opts = dict(netD="multiscale", num_d=2, d_layers=2, lambda_feat=10.0, upsample="resize-conv", d_antialias=True,
                epochs=2, epochs_decay=1, seed=3, **TINY)
    full = train(pairs=str(pairs), out=str(tmp_path / "full"), **opts)
    part = train(pairs=str(pairs), out=str(tmp_path / "part"), max_steps=5, save_every=5, **opts)
    resumed = train(out=str(part), resume=True, max_steps=None)
    a, b = load_checkpoint(full)["state"], load_checkpoint(resumed)["state"]
    assert a["step"] == b["step"] == 12
    for net in ("G", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net
    rows = [json.loads(line) for line in (full / "log.jsonl").read_text().splitlines()]
    assert all(r["G_feat"] > 0 for r in rows if "G_feat" in r) and any("G_feat" in r for r in rows)
    assert main(["export", str(full), str(tmp_path / "m.onnx")]) == 0
    assert main(["eval", str(tmp_path / "m.onnx"), "--pairs", str(pairs), "--out", str(tmp_path / "ev")]) == 0
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["texture"] > 0 and res["texture_target"] > 0 and "texture" in res["pairs"][0]
    assert "texture" in (tmp_path / "ev" / "index.html").read_text()


@pytest.mark.parametrize("model", ["cyclegan", "cut"])
def test_the_unpaired_families_take_the_multiscale_discriminator_and_pixelshuffle(tmp_path, model):
    data = write_a_b(tmp_path / "ab", n=4, size=32)
    run = train(unpaired=str(data), kind=model, out=str(tmp_path / "run"), netD="multiscale", d_layers=2, lambda_feat=1.0,
                upsample="pixelshuffle", max_steps=2, **TINY)
    assert (run / "model.pt").exists()
    assert main(["export", str(run), str(tmp_path / "m.onnx")]) == 0


def test_the_options_refuse_what_does_not_fit_in_one_line(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=2, size=32)
    with pytest.raises(ConfigError, match="--num-d is the number of scales of --netD multiscale"):
        train(pairs=str(pairs), out=str(tmp_path / "a"), num_d=2, **TINY)
    with pytest.raises(ConfigError, match="--num-d 3 is too many for 32x32"):
        train(pairs=str(pairs), out=str(tmp_path / "b"), netD="multiscale", num_d=3, **TINY)
    with pytest.raises(ConfigError, match="not of dcgan"):
        train(images=str(pairs), kind="dcgan", out=str(tmp_path / "c"), lambda_feat=1.0)
    with pytest.raises(ConfigError, match="upsample must be one of"):
        train(pairs=str(pairs), out=str(tmp_path / "d"), upsample="bilinear", **TINY)
    assert not any((tmp_path / n).exists() for n in "abcd")
