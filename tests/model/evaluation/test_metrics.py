"""Matting metrics against hand-computed values on toy alphas."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from clickmatte.model.evaluation import metrics


def test_sad_and_mse_exact_values() -> None:
    gt = np.zeros((10, 10), np.float32)
    gt[:2, :] = 1.0  # 20 pixels at 1
    gt[2, :] = 0.5  # 10 pixels at 0.5
    pred = np.zeros_like(gt)
    assert metrics.sad(pred, gt) == pytest.approx((20 + 10 * 0.5) / 1000)
    assert metrics.mse(pred, gt) == pytest.approx((20 + 10 * 0.25) / 100)
    assert metrics.sad(gt, gt) == 0.0 and metrics.mse(gt, gt) == 0.0


def test_uint8_and_float_inputs_agree() -> None:
    rng = np.random.default_rng(0)
    a8 = rng.integers(0, 256, (12, 9), dtype=np.uint8)
    b8 = rng.integers(0, 256, (12, 9), dtype=np.uint8)
    af, bf = a8 / 255.0, b8 / 255.0
    for name in metrics.METRIC_NAMES:
        fn = {"sad": metrics.sad, "mse": metrics.mse, "grad": metrics.grad_error, "conn": metrics.conn_error}[name]
        assert fn(a8, b8) == pytest.approx(fn(af, bf))
    assert metrics.sad(a8, b8) == pytest.approx(np.abs(a8.astype(int) - b8.astype(int)).sum() / 255 / 1000)


@pytest.mark.parametrize(
    "pred, gt",
    [
        (np.zeros((4, 4)), np.zeros((4, 5))),  # shape mismatch
        (np.zeros((4, 4, 1)), np.zeros((4, 4, 1))),  # not 2-D
        (np.full((4, 4), 2.0), np.zeros((4, 4))),  # out of range
        (np.zeros((4, 4), np.int32), np.zeros((4, 4), np.int32)),  # integer but not uint8
        (np.full((4, 4), np.nan), np.zeros((4, 4))),
    ],
)
def test_bad_input_raises_value_error(pred: np.ndarray, gt: np.ndarray) -> None:
    with pytest.raises(ValueError):
        metrics.all_metrics(pred, gt)


def test_grad_kernel_matches_reference_construction() -> None:
    hx, hy = metrics.gaussian_derivative_kernels(1.4)
    assert hx.shape == (9, 9)  # halfsize = ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = 4
    assert np.sum(hx * hx) == pytest.approx(1.0)
    np.testing.assert_allclose(hy, hx.T)
    # reference loop of the DIM Python port
    half, s = 4, 1.4
    g = lambda x: np.exp(-x**2 / (2 * s**2)) / (s * np.sqrt(2 * np.pi))  # noqa: E731
    ref = np.zeros((9, 9))
    for i in range(9):
        for j in range(9):
            ref[i, j] = g(i - half) * (-(j - half) * g(j - half) / s**2)
    ref /= np.sqrt(np.sum(ref**2))
    np.testing.assert_allclose(hx, ref)


def test_grad_identical_is_zero_and_constants_have_no_gradient() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((16, 20))
    assert metrics.grad_error(a, a) == 0.0
    # different constants: large SAD, but no gradients anywhere -> Grad 0
    assert metrics.grad_error(np.full((8, 8), 0.3), np.full((8, 8), 0.7)) == pytest.approx(0.0, abs=1e-15)


def test_grad_matches_scipy_convolution_reference() -> None:
    rng = np.random.default_rng(2)
    pred = rng.random((15, 17))
    gt = np.zeros((15, 17))
    gt[:, 8:] = 1.0
    hx, hy = metrics.gaussian_derivative_kernels(1.4)

    def amp(a: np.ndarray) -> np.ndarray:
        return np.sqrt(ndimage.convolve(a, hx, mode="nearest") ** 2 + ndimage.convolve(a, hy, mode="nearest") ** 2)

    expected = np.sum((amp(pred) - amp(gt)) ** 2) / 1000
    assert metrics.grad_error(pred, gt) == pytest.approx(expected, rel=1e-9)
    assert metrics.grad_error(pred, gt) == pytest.approx(metrics.grad_error(gt, pred))
    assert expected > 0


def test_conn_identical_is_zero() -> None:
    rng = np.random.default_rng(3)
    a = rng.random((10, 10))
    assert metrics.conn_error(a, a) == 0.0


def test_conn_hand_checked_cases() -> None:
    gt = np.zeros((10, 10))
    gt[2:6, 2:6] = 1.0  # a 4x4 solid blob, the largest common component at every threshold
    # 1) a disconnected island of 0.5 in the prediction: l = 0 there, phi_pred = 0.5, phi_gt = 1
    pred = gt.copy()
    pred[8, 8] = 0.5
    assert metrics.conn_error(pred, gt) == pytest.approx(0.5 / 1000)
    # 2) an island below theta (0.15) does not count
    pred = gt.copy()
    pred[8, 8] = 0.1
    assert metrics.conn_error(pred, gt) == 0.0
    # 3) the blob predicted at 0.6: connected up to threshold 0.6, so l = 0.6 on the blob:
    #    phi_pred = 1 - 0 = 1, phi_gt = 1 - 0.4 = 0.6 -> 16 pixels * 0.4
    pred = gt * 0.6
    assert metrics.conn_error(pred, gt) == pytest.approx(16 * 0.4 / 1000)
    # 4) a single full pixel where the ground truth is empty
    pred = np.zeros((10, 10))
    pred[0, 0] = 1.0
    assert metrics.conn_error(pred, np.zeros((10, 10))) == pytest.approx(1 / 1000)


def test_connectivity_levels_use_4_connectivity() -> None:
    # two diagonal neighbours are not 4-connected: the smaller one leaves at threshold 0.1
    a = np.zeros((6, 6))
    a[0:2, 0:2] = 1.0  # 4 pixels
    a[2, 2] = 1.0  # touches only diagonally
    level = metrics.connectivity_levels(a, a)
    assert level[0, 0] == 1.0 and level[2, 2] == 0.0


def test_all_metrics_keys() -> None:
    a = np.zeros((8, 8))
    b = np.ones((8, 8))
    m = metrics.all_metrics(a, b)
    assert set(m) == set(metrics.METRIC_NAMES)
    assert m["sad"] == pytest.approx(0.064) and m["mse"] == pytest.approx(1.0)


def test_sad_split_by_definite_and_soft_ground_truth() -> None:
    gt = np.zeros((4, 4), np.float32)
    gt[:, 2:] = 1.0
    gt[0, 0] = 0.5  # soft
    gt[1, 0] = 0.04  # definite background (below 5 %)
    pred = np.zeros((4, 4), np.float32)
    pred[0, 0] = 0.1  # soft pixel off by 0.4
    pred[3, 3] = 0.7  # definite fg pixel off by 0.3 (plus the 2 x 4 - 1 fg pixels off by 1)
    split = metrics.sad_split(pred, gt)
    assert split["soft"] == pytest.approx(0.4 / 1000)
    assert split["definite"] == pytest.approx((7 * 1.0 + 0.3 + 0.04) / 1000)
    assert split["soft"] + split["definite"] == pytest.approx(metrics.sad(pred, gt))
    with pytest.raises(ValueError):
        metrics.sad_split(pred, gt[:3])
