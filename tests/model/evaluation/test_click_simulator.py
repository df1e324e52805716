"""The error-driven click simulator and the random training clicks."""
from __future__ import annotations

import numpy as np
import pytest

from clickmatte.model.evaluation.click_simulator import interior_distance, next_click, random_clicks


def _rect(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    a = np.zeros((h, w), np.float32)
    a[y0:y1, x0:x1] = 1.0
    return a


def test_first_click_is_the_interior_of_the_foreground() -> None:
    gt = _rect(40, 50, 10, 31, 20, 41)  # 21x21 square centred at (30, 20)
    c = next_click(gt)
    assert c == {"x": 30, "y": 20, "label": "fg"}


def test_border_counts_as_boundary() -> None:
    gt = _rect(21, 30, 0, 21, 0, 11)  # left strip touching three borders
    c = next_click(gt)
    assert c is not None and c["label"] == "fg"
    assert c["x"] == 5 and c["y"] == 10  # the middle of the strip, not on the image edge
    d = interior_distance(gt > 0.5)
    assert d[0, 0] == pytest.approx(1.0) and d[10, 5] == pytest.approx(6.0)


def test_missed_foreground_gets_a_fg_click_inside_it() -> None:
    gt = _rect(60, 60, 5, 25, 5, 25) + _rect(60, 60, 35, 55, 35, 55)
    pred = _rect(60, 60, 5, 25, 5, 25).astype(np.float32) * 0.9  # found the first blob only
    c = next_click(gt, pred, [{"x": 15, "y": 15, "label": "fg"}])
    assert c is not None and c["label"] == "fg"
    assert 35 <= c["x"] < 55 and 35 <= c["y"] < 55  # inside the missed blob
    assert 44 <= c["x"] <= 45 and 44 <= c["y"] <= 45  # at its centre


def test_false_positive_gets_a_bg_click_inside_it() -> None:
    gt = _rect(60, 60, 5, 25, 5, 25)
    pred = gt + _rect(60, 60, 30, 58, 10, 50)  # a large region of background taken as foreground
    c = next_click(gt, pred, [{"x": 15, "y": 15, "label": "fg"}])
    assert c is not None and c["label"] == "bg"
    assert 30 <= c["y"] < 58 and 10 <= c["x"] < 50
    assert gt[c["y"], c["x"]] == 0 and pred[c["y"], c["x"]] == 1


def test_larger_error_wins_and_area_criterion_differs() -> None:
    gt = np.zeros((60, 60), np.float32)
    gt[2:4, 0:60] = 1.0  # a long thin missed strip: 120 px, but only 1 px from its boundary
    pred = _rect(60, 60, 20, 30, 20, 30)  # a compact 10x10 false positive: 100 px, 5 px deep
    by_dist = next_click(gt, pred)
    by_area = next_click(gt, pred, by="area")
    assert by_dist is not None and by_dist["label"] == "bg" and 20 <= by_dist["x"] < 30
    assert by_area is not None and by_area["label"] == "fg" and 2 <= by_area["y"] < 4


def test_no_error_means_no_click() -> None:
    gt = _rect(30, 30, 5, 20, 5, 20)
    assert next_click(gt, gt.copy()) is None
    assert next_click((gt * 255).astype(np.uint8), (gt * 200).astype(np.uint8)) is None  # 200/255 > 0.5


def test_never_clicks_the_same_pixel_twice() -> None:
    gt = _rect(40, 40, 10, 31, 10, 31)
    first = next_click(gt)
    assert first is not None
    second = next_click(gt, np.zeros_like(gt), [first])
    assert second is not None and second["label"] == "fg"
    assert (second["x"], second["y"]) != (first["x"], first["y"])
    assert gt[second["y"], second["x"]] == 1


def test_empty_foreground_asks_for_background() -> None:
    c = next_click(np.zeros((20, 30), np.float32))
    assert c is not None and c["label"] == "bg"


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        next_click(np.zeros((10, 10)), np.zeros((10, 11)))
    with pytest.raises(ValueError):
        next_click(np.zeros((10, 10, 3)))
    with pytest.raises(ValueError):
        next_click(np.zeros((10, 10)), by="size")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        random_clicks(np.zeros((10, 10)), np.random.default_rng(0), p=0.0)


def _soft_gt() -> np.ndarray:
    """A disk of foreground with a soft 6-px edge on a 48x48 canvas."""
    yy, xx = np.mgrid[0:48, 0:48]
    r = np.hypot(yy - 24, xx - 24)
    return np.clip((18 - r) / 6.0, 0.0, 1.0).astype(np.float32)


def test_random_click_count_follows_geometric_one_sixth() -> None:
    gt = _soft_gt()
    rng = np.random.default_rng(1234)
    n = 3000
    counts = np.array([len(random_clicks(gt, rng)) for _ in range(n)])
    # m ~ Geometric(1/6) capped at 24: E = 6 (1 - (5/6)^24) = 5.92, sd ~ 5.3 -> sd of the mean ~ 0.1
    expected = 6 * (1 - (5 / 6) ** 24)
    assert abs(counts.mean() - expected) < 0.4
    assert counts.min() >= 1 and counts.max() <= 24
    # P(m = 1) = 1/6, sd of the estimate ~ 0.007
    assert abs(np.mean(counts == 1) - 1 / 6) < 0.03


def test_random_clicks_land_in_definite_regions() -> None:
    gt = _soft_gt()
    rng = np.random.default_rng(5)
    firsts = []
    inner_fg = interior_distance(gt > 0.95)
    inner_bg = interior_distance(gt < 0.05)
    for _ in range(300):
        clicks = random_clicks(gt, rng, margin=3)
        firsts.append(clicks[0]["label"])
        for c in clicks:
            a = gt[c["y"], c["x"]]
            if c["label"] == "fg":
                assert a > 0.95 and inner_fg[c["y"], c["x"]] > 3
            else:
                assert a < 0.05 and inner_bg[c["y"], c["x"]] > 3
    assert 0.83 < np.mean(np.array(firsts) == "fg") < 0.97  # first click fg with probability 0.9


def test_random_clicks_degenerate_alphas() -> None:
    rng = np.random.default_rng(0)
    only_bg = random_clicks(np.zeros((16, 16), np.float32), rng, p=0.5)
    assert only_bg and all(c["label"] == "bg" for c in only_bg)
    only_fg = random_clicks(np.full((16, 16), 255, np.uint8), rng, p=0.5)
    assert only_fg and all(c["label"] == "fg" for c in only_fg)
    assert random_clicks(np.full((16, 16), 0.5, np.float32), rng) == []
    capped = [len(random_clicks(_soft_gt(), rng, max_clicks=3)) for _ in range(50)]
    assert max(capped) <= 3
    tiny = random_clicks(_rect(4, 4, 1, 3, 1, 3), rng, margin=3)  # too small to erode: un-eroded fallback
    inside = _rect(4, 4, 1, 3, 1, 3) > 0.5
    assert tiny and all(bool(inside[c["y"], c["x"]]) == (c["label"] == "fg") for c in tiny)


def test_fixed_clicks_alternate_at_the_deepest_points_away_from_earlier_clicks() -> None:
    from clickmatte.model.evaluation.click_simulator import fixed_clicks

    gt = _rect(100, 200, 20, 80, 20, 100)  # object 60 x 80 on the left, background mostly on the right
    clicks = fixed_clicks(gt, 5)
    assert [c["label"] for c in clicks] == ["fg", "bg", "fg", "bg", "fg"]
    assert all(bool(gt[c["y"], c["x"]] > 0.5) == (c["label"] == "fg") for c in clicks)
    first, second = clicks[0], clicks[1]
    assert abs(first["x"] - 59.5) <= 1 and abs(first["y"] - 49.5) <= 1  # the object's centre
    assert second["x"] > 100  # the widest free part of the background: right of the object
    # each later click keeps away from the earlier ones (depth counts them as boundary)
    for i, c in enumerate(clicks):
        for d in clicks[:i]:
            assert (c["x"] - d["x"]) ** 2 + (c["y"] - d["y"]) ** 2 >= 10 ** 2
    # the same truth gives the same clicks; a uint8 truth the same as the float one
    assert fixed_clicks(gt, 5) == clicks == fixed_clicks((gt * 255).astype(np.uint8), 5)
    assert fixed_clicks(gt, 2) == clicks[:2]
    # no background: fg only; with an unknown band the clicks stay on known pixels
    assert [c["label"] for c in fixed_clicks(np.ones((20, 20), np.float32), 3)] == ["fg"] * 3
    known = np.ones_like(gt, dtype=bool)
    known[:, 100:] = False
    band = fixed_clicks(gt, 4, known=known)
    assert all(known[c["y"], c["x"]] for c in band) and [c["label"] for c in band] == ["fg", "bg", "fg", "bg"]
    # a one-pixel object runs out of fg places: the list is shorter, bg goes on alone
    dot = np.zeros((30, 30), np.float32)
    dot[15, 15] = 1.0
    assert [c["label"] for c in fixed_clicks(dot, 4)] == ["fg", "bg", "bg", "bg"]
    assert fixed_clicks(gt, 0) == []
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError):
            fixed_clicks(gt, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fixed_clicks(gt, 2, known=known[:50])


def test_deepest_click_is_the_fixed_protocols_click() -> None:
    from clickmatte.model.evaluation.click_simulator import deepest_click, fixed_clicks

    gt = _rect(100, 200, 20, 80, 20, 100)
    clicks = fixed_clicks(gt, 4)
    assert deepest_click(gt, "fg") == clicks[0]
    assert deepest_click(gt, "bg", clicks[:1]) == clicks[1]
    assert deepest_click(gt, "fg", clicks[:2]) == clicks[2]
    assert deepest_click(np.zeros((20, 20), np.float32), "fg") is None  # no foreground at all
    known = np.zeros_like(gt, dtype=bool)
    known[:, :60] = True
    c = deepest_click(gt, "fg", known=known)
    assert c is not None and c["x"] < 60
    with pytest.raises(ValueError):
        deepest_click(gt, "maybe")
