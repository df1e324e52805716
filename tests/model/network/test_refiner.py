import numpy as np
import pytest
import torch

from clickmatte.model.network.refiner import (
    PatchRefiner, RefinerConfig, covering_patches, crop_patches, paste_patches, select_patches,
    window_soft_fraction,
)


def test_crop_then_paste_with_identity_refiner_is_exact():
    rng = np.random.default_rng(0)
    alpha = rng.random((150, 130)).astype(np.float32)
    boxes = [(0, 0, 64, 64), (66, 70, 64, 64), (10, 86, 64, 64)]
    crops = crop_patches(alpha[..., None], boxes, margin=16, size=64)
    assert crops.shape == (3, 1, 96, 96)
    centre = crops[:, 0, 16:80, 16:80]  # identity refiner = the centre of the crop
    out = paste_patches(alpha, boxes, centre)
    assert out is not alpha
    np.testing.assert_array_equal(out, alpha)


def test_crop_replicates_edges():
    img = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    (c,) = crop_patches(img, [(0, 0, 4, 3)], margin=2, size=4)
    assert c.shape == (1, 8, 8)
    assert c[0, 0, 0] == img[0, 0, 0] and c[0, -1, -1] == img[-1, -1, 0]
    np.testing.assert_array_equal(c[0, 2:5, 2:6], img[..., 0])


def test_paste_with_mask_only_touches_mask():
    alpha = np.zeros((100, 100), np.float32)
    mask = np.zeros((100, 100), bool)
    mask[10:30, 10:30] = True
    out = paste_patches(alpha, [(0, 0, 64, 64)], np.ones((1, 64, 64), np.float32), mask=mask)
    assert out[mask].min() == 1 and out[~mask].max() == 0


def test_select_patches_picks_most_uncertain_non_overlapping():
    sigma = np.full((256, 256), 0.01, np.float32)
    sigma[100:164, 40:104] = 1.0  # the hottest block
    sigma[12:76, 180:244] = 0.5  # second
    sigma[200:240, 200:240] = 0.3  # third (smaller)
    boxes = select_patches(sigma, 3, 64)
    assert boxes[0] == (40, 100, 64, 64)
    assert boxes[1] == (180, 12, 64, 64)
    x, y, w, h = boxes[2]
    assert x <= 200 and x + w >= 240 and y <= 200 and y + h >= 240
    for i in range(3):
        for j in range(i + 1, 3):
            a, b = boxes[i], boxes[j]
            overlap = not (a[0] + 64 <= b[0] or b[0] + 64 <= a[0] or a[1] + 64 <= b[1] or b[1] + 64 <= a[1])
            assert not overlap


def test_select_patches_respects_regions_and_mask():
    sigma = np.zeros((200, 200), np.float32)
    sigma[0:64, 0:64] = 1.0
    sigma[150:200, 150:200] = 0.2
    (box,) = select_patches(sigma, 1, 64, regions=[(140, 140, 60, 60)])
    assert box[0] + 64 > 140 and box[1] + 64 > 140
    mask = np.zeros((200, 200), bool)
    mask[180:190, 180:190] = True
    (box,) = select_patches(sigma, 1, 64, mask=mask)
    assert box[0] <= 180 < box[0] + 64 and box[1] <= 180 < box[1] + 64
    assert select_patches(sigma, 0, 64) == []
    with pytest.raises(ValueError):
        select_patches(sigma, 1, 64, regions=[(500, 500, 10, 10)])
    with pytest.raises(ValueError):
        select_patches(sigma, 1, 64, mask=np.zeros((10, 10), bool))


def test_window_soft_fraction_counts_soft_pixels():
    alpha = np.zeros((8, 8), np.float32)
    alpha[:4, :4] = 0.5  # soft
    alpha[4:, 4:] = 1.0  # sure foreground: not soft
    alpha[0, 7] = 0.05  # on the border of the sure range: not soft
    frac = window_soft_fraction(alpha, np.array([0, 4]), np.array([0, 4]), 4, 4)
    np.testing.assert_allclose(frac, [[1.0, 0.0], [0.0, 0.0]])
    frac = window_soft_fraction(alpha, np.array([0]), np.array([0]), 8, 8)
    assert frac[0, 0] == pytest.approx(16 / 64)


def test_select_patches_max_soft_skips_mostly_soft_windows():
    sigma = np.full((192, 192), 0.01, np.float32)
    alpha = np.zeros((192, 192), np.float32)
    sigma[0:64, 0:64] = 1.0  # the most uncertain block is all soft (glass, a veil) ...
    alpha[0:64, 0:64] = 0.4
    sigma[120:184, 120:184] = 0.5  # ... the second is a hard edge
    alpha[120:184, 152:184] = 1.0
    assert select_patches(sigma, 1, 64)[0] == (0, 0, 64, 64)
    (box,) = select_patches(sigma, 1, 64, alpha=alpha, max_soft=0.1)
    assert box == (120, 120, 64, 64)
    boxes = select_patches(sigma, 20, 64, alpha=alpha, max_soft=0.1)
    for x, y, w, h in boxes:  # no window of the limit's choice holds more than 10 % soft pixels
        assert ((alpha[y:y + h, x:x + w] > 0.05) & (alpha[y:y + h, x:x + w] < 0.95)).mean() <= 0.1
    assert select_patches(sigma, 1, 64, alpha=alpha, max_soft=1.0)[0] == (0, 0, 64, 64)
    assert select_patches(sigma, 1, 64, alpha=np.full_like(alpha, 0.5), max_soft=0.1) == []  # nothing to pick
    with pytest.raises(ValueError, match="max_soft"):
        select_patches(sigma, 1, 64, alpha=alpha, max_soft=1.5)
    with pytest.raises(ValueError, match="coarse alpha"):
        select_patches(sigma, 1, 64, max_soft=0.1)
    with pytest.raises(ValueError, match="coarse alpha"):
        select_patches(sigma, 1, 64, alpha=alpha[:10], max_soft=0.1)


def test_select_on_small_images():
    boxes = select_patches(np.ones((40, 50), np.float32), 5, 64)
    assert boxes == [(0, 0, 50, 40)]


def test_covering_patches_cover_region():
    boxes = covering_patches(300, 200, 64, regions=[(30, 50, 100, 100)])
    cov = np.zeros((300, 200), bool)
    for x, y, w, h in boxes:
        cov[y : y + h, x : x + w] = True
    assert cov[50:150, 30:130].all()


def test_refiner_shapes_and_initial_identity():
    ref = PatchRefiner(RefinerConfig(patch_size=64, margin=16, width=8)).eval()
    rgb = torch.rand(2, 3, 96, 96)
    alpha = torch.rand(2, 1, 96, 96)
    sigma = torch.rand(2, 1, 96, 96) + 0.01
    out = ref(rgb, alpha, sigma)
    assert out.shape == (2, 1, 64, 64)
    # zero-initialised head: an untrained refiner returns the coarse alpha
    torch.testing.assert_close(out, alpha[..., 16:80, 16:80])
    with pytest.raises(ValueError):
        ref(rgb[..., :90, :90], alpha, sigma)


def test_window_sums_equal_brute_force_sums():
    from clickmatte.model.network.refiner import _window_sums

    rng = np.random.default_rng(3)
    ys, xs = np.array([0, 4, 17, 30]), np.array([0, 9, 21])
    for values, dtype in ((rng.random((40, 33), dtype=np.float32), np.float64),
                          (rng.random((40, 33)), np.float64),
                          ((rng.random((40, 33)) > 0.5), np.int64)):
        got = _window_sums(values, ys, xs, 10, 12, dtype=dtype)
        want = np.array([[values[y:y + 10, x:x + 12].sum(dtype=np.float64) for x in xs] for y in ys])
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, rtol=1e-12)
