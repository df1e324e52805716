"""Local merge: only the regions a click pulls towards its label take the new answer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from clickmatte.model.inference.clicks import Click
from clickmatte.model.inference.local_merge import guard_mask, merge_mask
from clickmatte.model.inference.predictor import Predictor
from clickmatte.model.network.registry import DEFAULT_CHECKPOINT, load_checkpoint


def _square(a: np.ndarray, y0: int, x0: int, side: int, value: float) -> np.ndarray:
    a = a.copy()
    a[y0 : y0 + side, x0 : x0 + side] = value
    return a


def test_a_fg_click_keeps_only_the_region_it_pulls_up() -> None:
    prev = np.zeros((100, 100), np.float32)
    new = _square(_square(prev, 10, 10, 20, 1.0), 60, 60, 20, 1.0)  # two parts appear, one is clicked
    w = merge_mask(prev, new, [Click(20, 20, True)], radius=3, grow=2)
    assert w.shape == (100, 100) and w.dtype == np.float32
    assert w[15:25, 15:25].min() == 1.0  # the clicked part comes in
    assert w[60:80, 60:80].max() == 0.0  # the part no click points at stays as it was
    assert w[0:5, 50:100].max() == 0.0


def test_a_click_on_a_part_already_right_moves_nothing() -> None:
    prev = _square(np.zeros((80, 80), np.float32), 20, 20, 40, 1.0)
    new = _square(prev, 35, 35, 10, 0.4)  # the net drops alpha right around a confirming fg click
    assert merge_mask(prev, new, [Click(40, 40, True)], radius=3).max() == 0.0


def test_a_bg_click_keeps_only_the_region_it_pulls_down() -> None:
    prev = np.ones((60, 60), np.float32)
    new = _square(_square(prev, 0, 0, 20, 0.0), 40, 40, 20, 0.0)
    new[25:35, 25:35] = 1.0  # no change there
    w = merge_mask(prev, new, [Click(5, 5, False)], radius=2, grow=0)
    assert w[0:20, 0:20].min() == 1.0 and w[40:, 40:].max() == 0.0
    # a fg click does not keep a region that went down
    assert merge_mask(prev, new, [Click(5, 5, True)], radius=2).max() == 0.0


def test_grow_takes_the_soft_edge_around_a_kept_region() -> None:
    prev = np.zeros((50, 50), np.float32)
    new = _square(prev, 20, 20, 10, 1.0)
    new[18:20, 20:30] = 0.05  # a faint edge below the threshold
    w0 = merge_mask(prev, new, [Click(25, 25, True)], radius=2, grow=0)
    w3 = merge_mask(prev, new, [Click(25, 25, True)], radius=2, grow=3)
    assert w0[19, 25] == 0.0 and w3[19, 25] > 0.0
    assert 0.0 <= w3.min() and w3.max() <= 1.0


def test_guard_holds_a_clicked_sure_part_and_keeps_the_rest() -> None:
    prev = _square(np.zeros((100, 100), np.float32), 20, 20, 40, 1.0)
    new = _square(prev, 30, 30, 10, 0.3)  # the net drops alpha next to a confirming fg click ...
    new = _square(new, 80, 80, 10, 0.6)  # ... and also raises a far part no click points at
    w = guard_mask(prev, new, [Click(40, 40, True)], radius=3, grow=2)
    assert w[30:40, 30:40].max() == 0.0  # the clicked sure part keeps its previous alpha
    assert w[80:90, 80:90].min() == 1.0  # a change elsewhere is kept
    assert w[0:10, 0:10].min() == 1.0


def test_guard_lets_a_bg_click_take_back_what_it_points_at() -> None:
    prev = _square(np.zeros((100, 100), np.float32), 20, 20, 60, 1.0)
    new = _square(prev, 60, 60, 20, 0.0)  # a bg click in a corner of the sure part removes it
    clicks = [Click(30, 30, True), Click(70, 70, False)]
    w = guard_mask(prev, new, clicks, radius=3, grow=0)
    assert w.min() == 1.0
    # without the bg click the same drop is held
    assert guard_mask(prev, new, clicks[:1], radius=3, grow=0)[60:80, 60:80].max() == 0.0
    with pytest.raises(ValueError):
        guard_mask(prev, new, clicks, radius=3, sure=0.5)


def test_bad_arguments_raise() -> None:
    a = np.zeros((10, 10), np.float32)
    with pytest.raises(ValueError):
        merge_mask(a, np.zeros((10, 11), np.float32), [], radius=2)
    with pytest.raises(ValueError):
        merge_mask(a, a, [], radius=2, threshold=0.0)
    with pytest.raises(ValueError):
        merge_mask(a, a, [], radius=0)
    with pytest.raises(ValueError):
        merge_mask(a, a, [], radius=2, grow=-1)


@pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason="needs the shipped weights")
def test_predictor_keeps_the_previous_alpha_where_no_click_pulls() -> None:
    """With the shipped weights on a 640 x 480 photo-like image (above the working size): with
    ``local_merge`` the answer equals the previous alpha on every pixel no click moved, and a
    background click far from the subject leaves the subject exactly as it was."""
    torch.set_num_threads(1)
    model = load_checkpoint(DEFAULT_CHECKPOINT).eval()
    rng = np.random.default_rng(0)
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w]
    disc = np.hypot(yy - 240, xx - 280) < 120
    img = np.where(disc[..., None], [210, 160, 120], [40, 90, 60]) + rng.integers(0, 25, (h, w, 3))
    img = img.astype(np.uint8)
    plain = Predictor(model, device="cpu")
    merged = Predictor(model, device="cpu", click_merge="local")
    plain.set_image(img)
    merged.set_image(img)
    first, _ = plain.predict([(280, 240, "fg")])
    prev = np.round(first * 255).astype(np.uint8)
    clicks = [(280, 240, "fg"), (600, 40, "bg")]
    free, _ = plain.predict(clicks, prev_alpha=prev)
    kept, _ = merged.predict(clicks, prev_alpha=prev)
    prev_f = prev.astype(np.float32) / 255.0
    subject = np.hypot(yy - 240, xx - 280) < 100
    np.testing.assert_array_equal(kept[subject], prev_f[subject])
    assert np.abs(free - prev_f).max() > 0.0  # the free answer did change something
    changed = np.abs(kept - prev_f) > 0
    assert changed.mean() < 0.5
