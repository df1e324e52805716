from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from clickmatte.model.inference.guided_upsample import guided_coefficients, guided_upsample

LEMUR = Path(__file__).resolve().parents[3] / "examples" / "lemur.png"


def _lemur(size: int = 256) -> np.ndarray:
    img = np.asarray(Image.open(LEMUR).convert("RGB"))
    h, w = img.shape[:2]
    s = size / max(h, w)
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def test_an_alpha_that_is_affine_in_colour_is_reproduced_at_full_size():
    rgb = _lemur()
    f = rgb.astype(np.float32) / 255.0
    truth = 0.1 + 0.5 * f[..., 0] + 0.3 * f[..., 1] + 0.1 * f[..., 2]  # in [0.1, 1.0]
    h, w = truth.shape
    small = cv2.resize(rgb, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    fs = small.astype(np.float32) / 255.0
    low = 0.1 + 0.5 * fs[..., 0] + 0.3 * fs[..., 1] + 0.1 * fs[..., 2]
    up = guided_upsample(low, small, rgb, radius=2, eps=1e-6)
    bilinear = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
    assert up.shape == (h, w) and up.dtype == np.float32
    assert np.abs(up - truth).mean() < 0.01
    assert np.abs(up - truth).mean() < 0.5 * np.abs(bilinear - truth).mean()


def _composite(size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The photo pasted over its own mirror image through a wavy, soft-edged alpha: ``(rgb uint8, alpha)``."""
    fg = _lemur(size).astype(np.float32) / 255.0
    h, w = fg.shape[:2]
    bg = fg[::-1, ::-1, ::-1]
    yy, xx = np.mgrid[0:h, 0:w]
    angle = np.arctan2(yy - h / 2, xx - w / 2)
    edge = 0.3 + 0.04 * np.sin(angle * 23) + 0.02 * np.sin(angle * 57)
    alpha = np.clip((edge - np.hypot((yy - h / 2) / h, (xx - w / 2) / w)) * w / 1.5 + 0.5, 0, 1).astype(np.float32)
    rgb = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return (rgb * 255).round().astype(np.uint8), alpha


def test_edges_follow_the_full_resolution_photo():
    """A composite's alpha seen at 1/4 size: upsampled along the photo's edges it is far closer to the truth."""
    rgb, truth = _composite()
    h, w = truth.shape
    small = cv2.resize(rgb, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    low = cv2.resize(truth, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    bilinear = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
    up = guided_upsample(low, small, rgb, radius=1)
    assert up.min() >= 0.0 and up.max() <= 1.0
    assert np.abs(up - truth).sum() < 0.5 * np.abs(bilinear - truth).sum()
    # a large eps turns the filter into a plain smoother: the gain shrinks
    smooth = guided_upsample(low, small, rgb, radius=1, eps=1.0)
    assert np.abs(smooth - truth).sum() > 2 * np.abs(up - truth).sum()


def test_constant_alpha_stays_constant_and_float_guides_work():
    rgb = _lemur(128)
    small = cv2.resize(rgb, (32, rgb.shape[0] // 4), interpolation=cv2.INTER_AREA)
    low = np.full(small.shape[:2], 0.7, np.float32)
    up = guided_upsample(low, small.astype(np.float32) / 255.0, rgb.astype(np.float32) / 255.0)
    np.testing.assert_allclose(up, 0.7, atol=1e-4)


def test_coefficients_shape():
    rgb = _lemur(64)
    coef = guided_coefficients(np.zeros(rgb.shape[:2], np.float32), rgb)
    assert coef.shape == rgb.shape[:2] + (4,) and coef.dtype == np.float32


@pytest.mark.parametrize("kwargs, match", [
    ({"radius": 0}, "radius"),
    ({"eps": 0.0}, "eps"),
])
def test_bad_parameters_raise(kwargs, match):
    rgb = _lemur(64)
    with pytest.raises(ValueError, match=match):
        guided_upsample(np.zeros(rgb.shape[:2], np.float32), rgb, rgb, **kwargs)


def test_bad_arrays_raise():
    rgb = _lemur(64)
    a = np.zeros(rgb.shape[:2], np.float32)
    with pytest.raises(ValueError, match="differ in size"):
        guided_upsample(a[:-1], rgb, rgb)
    with pytest.raises(ValueError, match="rgb_low"):
        guided_upsample(a, rgb[..., :2], rgb)
    with pytest.raises(ValueError, match="rgb_full"):
        guided_upsample(a, rgb, rgb[..., 0])
    with pytest.raises(ValueError, match="alpha_low"):
        guided_upsample(a[None], rgb, rgb)
    with pytest.raises(ValueError, match="uint8 or float"):
        guided_upsample(a, rgb.astype(np.int32), rgb)


def test_a_guide_that_is_not_an_array_is_a_value_error():
    rgb = _lemur(64)
    with pytest.raises(ValueError, match="rgb_full"):
        guided_upsample(np.zeros(rgb.shape[:2], np.float32), rgb, [[0, 0, 0]])


def test_a_precomputed_guide_gives_the_same_answer():
    """guide_statistics once per image, then any number of alphas: the same as computing it each time."""
    from clickmatte.model.inference.guided_upsample import guide_statistics

    rgb, truth = _composite(128)
    small = cv2.resize(rgb, (32, 32 * rgb.shape[0] // rgb.shape[1]), interpolation=cv2.INTER_AREA)
    guide = guide_statistics(small, radius=2, eps=1e-4)
    for alpha in (cv2.resize(truth, small.shape[1::-1], interpolation=cv2.INTER_AREA),
                  np.random.default_rng(0).random(small.shape[:2]).astype(np.float32)):
        np.testing.assert_array_equal(guided_upsample(alpha, None, rgb, guide=guide),
                                      guided_upsample(alpha, small, rgb, radius=2, eps=1e-4))
    with pytest.raises(ValueError, match="rgb_low or a precomputed guide"):
        guided_coefficients(np.zeros(small.shape[:2], np.float32))
