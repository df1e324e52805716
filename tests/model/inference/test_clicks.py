import numpy as np
import pytest

from clickmatte.model.inference.clicks import Click, as_click, encode_clicks, normalize_clicks, scale_clicks


def test_disks_land_where_the_clicks_are():
    maps = encode_clicks([{"x": 10, "y": 20, "label": "fg"}, (40, 5, "bg")], 50, 60, radius=4)
    assert maps.shape == (2, 50, 60) and maps.dtype == np.float32
    fg, bg = maps
    assert fg[20, 10] == 1 and bg[20, 10] == 0
    assert bg[5, 40] == 1 and fg[5, 40] == 0
    # disk of radius 4: (x+4, y) inside, (x+5, y) and the diagonal corner outside
    assert fg[20, 14] == 1 and fg[20, 15] == 0 and fg[24, 14] == 0
    # area close to pi r^2
    assert abs(fg.sum() - np.pi * 16) < 12
    assert set(np.unique(maps)) <= {0.0, 1.0}


def test_disk_clipped_at_border_and_overlaps_stay_binary():
    maps = encode_clicks([(0, 0, "fg"), (1, 1, "fg")], 10, 10, radius=3)
    assert maps[0, 0, 0] == 1 and maps.max() == 1
    assert maps[1].sum() == 0


def test_labels_parse_and_reject():
    assert as_click((1, 2, "fg")).is_fg and not as_click((1, 2, "bg")).is_fg
    assert as_click({"x": 1, "y": 2, "label": 1}).is_fg
    for bad in [(1, 2, "maybe"), (1, 2), {"x": 1, "label": "fg"}, ("a", 2, "fg"), (float("nan"), 1, "fg")]:
        with pytest.raises(ValueError):
            as_click(bad)


def test_clicks_outside_the_image_raise():
    assert normalize_clicks([(0, 0, "fg"), (9.5, 4.9, "bg")], 10, 5)
    for c in [(-1, 0, "fg"), (10, 0, "fg"), (0, 5, "bg")]:
        with pytest.raises(ValueError, match="outside"):
            normalize_clicks([c], 10, 5)


def test_bad_map_size_or_radius():
    with pytest.raises(ValueError):
        encode_clicks([], 0, 5)
    with pytest.raises(ValueError):
        encode_clicks([], 5, 5, radius=0)


def test_scale_clicks_keeps_pixel_centres():
    (c,) = scale_clicks([Click(0, 0, True)], 2.0, 2.0)
    assert (c.x, c.y) == (0.5, 0.5)
    (c,) = scale_clicks([Click(99.5, 49.5, False)], 0.5, 0.5)
    assert (c.x, c.y) == (49.5, 24.5) and not c.is_fg
