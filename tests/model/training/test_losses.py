import math

import pytest
import torch

from clickmatte.model.training.losses import (
    gradient_loss, laplace_nll, matting_losses, refinement_loss, regression_loss, transition_mask,
)


def t(rows):
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def test_regression_l1_in_transition_l2_in_solid():
    gt = t([[0.0, 1.0], [0.5, 0.25]])
    pred = t([[0.2, 0.6], [0.7, 0.25]])
    # solid: errors 0.2, 0.4 -> L2 mean (0.04 + 0.16) / 2 = 0.1; transition: 0.2, 0 -> L1 mean 0.1
    assert regression_loss(pred, gt).item() == pytest.approx(0.2, abs=1e-6)
    assert transition_mask(gt).sum().item() == 2


def test_regression_without_transition_pixels():
    gt = t([[0.0, 1.0]])
    pred = t([[0.5, 1.0]])
    assert regression_loss(pred, gt).item() == pytest.approx(0.125)


def test_gradient_loss_hand_value():
    gt = t([[0.0, 0.0], [0.0, 0.0]])
    pred = t([[0.0, 1.0], [0.0, 0.0]])
    # d = pred; x-diffs: |1-0|, |0-0| -> mean 0.5; y-diffs: |0-0|, |0-1| -> mean 0.5
    assert gradient_loss(pred, gt).item() == pytest.approx(1.0)
    assert gradient_loss(gt + 0.3, gt).item() == pytest.approx(0.0, abs=1e-7)


def test_laplace_nll_hand_value_and_detached_alpha():
    gt = t([[1.0, 0.0]])
    pred = t([[0.5, 0.0]]).requires_grad_(True)
    sigma = t([[0.5, 1.0]]).requires_grad_(True)
    loss = laplace_nll(sigma, pred, gt)
    expected = ((math.log(0.5) + 0.5 / 0.5) + (math.log(1.0) + 0.0)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert pred.grad is None and sigma.grad is not None
    with pytest.raises(ValueError):
        laplace_nll(t([[0.0, 1.0]]), pred, gt)


def test_nll_minimised_at_sigma_equal_error():
    gt = t([[1.0]])
    pred = t([[0.8]])
    vals = {s: laplace_nll(t([[s]]), pred, gt).item() for s in (0.1, 0.2, 0.4)}
    assert vals[0.2] < vals[0.1] and vals[0.2] < vals[0.4]


def test_refinement_loss_weights_hardest_fifth():
    gt = torch.zeros(1, 1, 1, 10)
    pred = torch.zeros(1, 1, 1, 10)
    pred[..., :2] = 1.0  # 2 of 10 pixels wrong: mean 0.2, hardest 20 % mean 1.0
    assert refinement_loss(pred, gt, lam=0.5).item() == pytest.approx(0.2 + 0.5 * 1.0)
    with pytest.raises(ValueError):
        refinement_loss(pred, gt, hard_fraction=0)


def test_matting_losses_dict_and_total():
    gt = t([[0.0, 1.0], [0.5, 0.25]])
    pred = t([[0.2, 0.6], [0.7, 0.25]])
    sigma = torch.full_like(gt, 0.5)
    d = matting_losses(pred, gt, w_regression=2.0, w_gradient=0.5, sigma=sigma, w_uncertainty=3.0)
    assert set(d) == {"regression", "gradient", "uncertainty", "total"}
    total = 2.0 * d["regression"] + 0.5 * d["gradient"] + 3.0 * d["uncertainty"]
    assert d["total"].item() == pytest.approx(total.item())
    with pytest.raises(ValueError):
        matting_losses(pred, gt[..., :1])
