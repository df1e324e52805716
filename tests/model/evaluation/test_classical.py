"""The classical engine: clicks -> GrabCut -> trimap -> closed-form matting."""
from __future__ import annotations

import numpy as np
import pytest

from clickmatte.model.evaluation.classical import SURE_SIGMA, ClassicalEngine
from clickmatte.model.evaluation.metrics import mse


def _scene(h: int = 64, w: int = 72, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A reddish disk (soft edge) over a noisy blue-green background: ``(rgb uint8, alpha float)``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((18.0 - r) / 2.0, 0.0, 1.0)
    fg = np.array([220.0, 60.0, 40.0])
    bg = np.stack([np.full((h, w), 30.0), 120 + 40 * np.sin(xx / 5.0), np.full((h, w), 170.0)], axis=2)
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg + rng.normal(0, 4, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), alpha.astype(np.float32)


def test_fg_and_bg_clicks_give_a_good_matte() -> None:
    img, gt = _scene()
    eng = ClassicalEngine()
    eng.set_image(img)
    alpha, sigma = eng.predict([{"x": 36, "y": 32, "label": "fg"}, {"x": 3, "y": 3, "label": "bg"}])
    assert alpha.shape == gt.shape and sigma.shape == gt.shape
    assert alpha.dtype == np.float32 and sigma.dtype == np.float32
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    assert mse(alpha, gt) < 0.01
    assert alpha[32, 36] == 1.0 and alpha[3, 3] == 0.0
    # uncertainty: the unknown band of the trimap, sure elsewhere
    band = (eng.trimap > 0) & (eng.trimap < 1)
    assert band.any() and band.mean() < 0.5
    assert np.all(sigma[band] == pytest.approx(0.25)) and np.all(sigma[~band] == pytest.approx(SURE_SIGMA))
    # the band straddles the true edge
    assert band[32, 36 + 18] and not band[32, 36]


def test_prev_alpha_is_accepted_and_ignored() -> None:
    img, _ = _scene()
    eng = ClassicalEngine()
    eng.set_image(img)
    clicks = [{"x": 36, "y": 32, "label": "fg"}]
    a1, _ = eng.predict(clicks)
    a2, _ = eng.predict(clicks, prev_alpha=np.ones((64, 72), np.float32))
    np.testing.assert_array_equal(a1, a2)


def test_degenerate_click_sets_never_crash() -> None:
    img, gt = _scene()
    eng = ClassicalEngine()
    eng.set_image(img)
    alpha, sigma = eng.predict([])
    assert not alpha.any() and np.all(sigma > 0)
    only_bg, _ = eng.predict([{"x": 2, "y": 2, "label": "bg"}, {"x": 70, "y": 60, "label": "bg"}])
    assert only_bg[2, 2] == 0.0 and only_bg[60, 70] == 0.0
    only_fg, _ = eng.predict([{"x": 36, "y": 32, "label": "fg"}])
    assert only_fg[32, 36] == 1.0
    # same place clicked fg and bg
    both, _ = eng.predict([{"x": 36, "y": 32, "label": "fg"}, {"x": 36, "y": 32, "label": "bg"}])
    assert both.shape == gt.shape and np.isfinite(both).all()


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (8, 6), (2, 40)])
def test_tiny_images(shape: tuple[int, int]) -> None:
    h, w = shape
    rng = np.random.default_rng(1)
    eng = ClassicalEngine()
    eng.set_image(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    for clicks in ([{"x": 0, "y": 0, "label": "fg"}], [{"x": w - 1, "y": h - 1, "label": "bg"}],
                   [{"x": 0, "y": 0, "label": "fg"}, {"x": w - 1, "y": h - 1, "label": "bg"}]):
        alpha, sigma = eng.predict(clicks)
        assert alpha.shape == (h, w) and sigma.shape == (h, w)
        assert np.isfinite(alpha).all() and (alpha >= 0).all() and (alpha <= 1).all() and (sigma > 0).all()


def test_flat_image_and_rgba() -> None:
    eng = ClassicalEngine()
    flat = np.full((40, 40, 4), 128, np.uint8)
    eng.set_image(flat)
    alpha, _ = eng.predict([{"x": 20, "y": 20, "label": "fg"}, {"x": 1, "y": 1, "label": "bg"}])
    assert alpha[20, 20] == 1.0 and alpha[1, 1] == 0.0


def test_bad_input() -> None:
    eng = ClassicalEngine()
    with pytest.raises(ValueError):
        eng.predict([{"x": 1, "y": 1, "label": "fg"}])  # no image yet
    with pytest.raises(ValueError):
        eng.set_image(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        eng.set_image(np.zeros((10, 10, 3), np.float32))
    eng.set_image(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError):
        eng.predict([{"x": 10, "y": 1, "label": "fg"}])  # outside the image
    with pytest.raises(ValueError):
        eng.predict([{"x": 1, "y": 1, "label": "maybe"}])
