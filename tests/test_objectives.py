"""GAN objectives on known logits, their gradients, and the gradient penalty."""
import math

import pytest
import torch

from img2img.gan import objectives as O


def sig(x):
    return 1 / (1 + math.exp(-x))


REAL = [2.0, -0.5, 0.3]
FAKE = [-1.0, 0.7, -3.0]


def mean(xs):
    return sum(xs) / len(xs)


def t(xs):
    return torch.tensor(xs, dtype=torch.float64)


def test_bce_discriminator_loss_matches_the_papers_formula():
    want = mean([-math.log(sig(r)) for r in REAL]) + mean([-math.log(1 - sig(f)) for f in FAKE])
    assert O.bce_d(t(REAL), t(FAKE)).item() == pytest.approx(want, rel=1e-12)
    assert O.get("nonsat")[0] is O.bce_d and O.get("minimax")[0] is O.bce_d


def test_generator_losses_on_known_logits():
    assert O.minimax_g(t(FAKE)).item() == pytest.approx(mean([math.log(1 - sig(f)) for f in FAKE]), rel=1e-12)
    assert O.nonsat_g(t(FAKE)).item() == pytest.approx(mean([-math.log(sig(f)) for f in FAKE]), rel=1e-12)
    assert O.lsgan_g(t(FAKE)).item() == pytest.approx(mean([(f - 1) ** 2 for f in FAKE]), rel=1e-12)   # MSE, as the reference code
    assert O.hinge_g(t(FAKE)).item() == pytest.approx(-mean(FAKE), rel=1e-12)
    assert O.wgan_g(t(FAKE)).item() == pytest.approx(-mean(FAKE), rel=1e-12)


def test_discriminator_losses_on_known_logits():
    r, f = t(REAL), t(FAKE)
    assert O.lsgan_d(r, f).item() == pytest.approx(
        mean([(x - 1) ** 2 for x in REAL]) + mean([x ** 2 for x in FAKE]), rel=1e-12)
    assert O.hinge_d(r, f).item() == pytest.approx(
        mean([max(0, 1 - x) for x in REAL]) + mean([max(0, 1 + x) for x in FAKE]), rel=1e-12)
    assert O.wgan_d(r, f).item() == pytest.approx(mean(FAKE) - mean(REAL), rel=1e-12)


def test_losses_are_finite_for_extreme_logits():
    big = torch.tensor([-200.0, 200.0])
    for name in O.OBJECTIVES:
        d, g = O.get(name)
        assert torch.isfinite(d(big, big)) and torch.isfinite(g(big)), name
    # -log D(G(z)) for a fake rejected with logit -200 is 200, not inf
    assert O.nonsat_g(torch.tensor([-200.0])).item() == pytest.approx(200.0)


def grad_wrt_logit(fn, value):
    x = torch.tensor([value], dtype=torch.float64, requires_grad=True)
    fn(x).backward()
    return x.grad.item()


def test_minimax_generator_gradient_saturates_where_nonsat_does_not():
    # D confidently rejects the fakes (logit -6, D(G(z)) ~ 0.0025): the situation early in training.
    g_minimax = grad_wrt_logit(O.minimax_g, -6.0)     # d/dl log(1 - sigmoid(l)) = -sigmoid(l)
    g_nonsat = grad_wrt_logit(O.nonsat_g, -6.0)       # d/dl -log sigmoid(l) = sigmoid(l) - 1
    assert g_minimax == pytest.approx(-sig(-6.0), rel=1e-9)
    assert g_nonsat == pytest.approx(sig(-6.0) - 1, rel=1e-9)
    assert abs(g_minimax) < 0.003 and abs(g_nonsat) > 0.99
    assert abs(g_nonsat) / abs(g_minimax) > 300
    # both push the fake logit up (towards "real")
    assert g_minimax < 0 and g_nonsat < 0
    # where D is fooled the roles swap: minimax has the strong gradient
    assert abs(grad_wrt_logit(O.minimax_g, 6.0)) > abs(grad_wrt_logit(O.nonsat_g, 6.0))


def test_gradient_penalty_of_a_linear_critic():
    torch.manual_seed(0)
    w = torch.tensor([3.0, 0.0, 4.0, 0.0])            # |w| = 5 -> penalty (5 - 1)^2 = 16 everywhere

    def critic(x):
        return x.flatten(1) @ w

    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    assert O.gradient_penalty(critic, real, fake).item() == pytest.approx(16.0, rel=1e-5)
    w_unit = w / 5
    assert O.gradient_penalty(lambda x: x.flatten(1) @ w_unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_is_differentiable_for_the_critic():
    lin = torch.nn.Linear(4, 1)
    gp = O.gradient_penalty(lambda x: lin(x.flatten(1)), torch.randn(5, 4), torch.randn(5, 4))
    gp.backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_unknown_objective_and_d_probability():
    with pytest.raises(ValueError, match="unknown objective"):
        O.get("vanilla")
    logits = torch.tensor([0.0, 2.0])
    assert O.d_probability(logits, "nonsat").item() == pytest.approx((0.5 + sig(2.0)) / 2)
    assert O.d_probability(logits, "hinge").item() == pytest.approx(1.0)
