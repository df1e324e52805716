"""Pure-Python pixel helpers, checked against numpy/OpenCV equivalents."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from clickmatte.plugin import raster


def test_u16_u8_round_trip() -> None:
    v = np.arange(256, dtype=np.uint8)
    wide = raster.u8_to_u16(v.tobytes())
    assert np.array_equal(np.frombuffer(wide, "<u2"), v.astype(np.uint16) * 257)
    assert raster.u16_to_u8(wide) == v.tobytes()
    with pytest.raises(ValueError):
        raster.u16_to_u8(b"abc")


def test_reorder_and_interleave() -> None:
    rng = np.random.default_rng(0)
    bgra = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    rgb = raster.reorder(bgra.tobytes(), "BGRA", "RGB")
    assert np.array_equal(np.frombuffer(rgb, np.uint8).reshape(5, 7, 3), bgra[..., [2, 1, 0]])
    with pytest.raises(ValueError):
        raster.reorder(b"1234", "RGBA", "RGBX")
    with pytest.raises(ValueError):
        raster.interleave([b"12", b"1"])


@pytest.mark.parametrize("src,dst", [((10, 6), (30, 18)), ((64, 48), (128, 96)), ((7, 5), (13, 9)), ((8, 8), (4, 4))])
def test_resize_nearest_matches_opencv(src, dst) -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (src[1], src[0]), dtype=np.uint8)
    ours = np.frombuffer(raster.resize_nearest(a.tobytes(), *src, *dst), np.uint8).reshape(dst[1], dst[0])
    ref = cv2.resize(a, dst, interpolation=cv2.INTER_NEAREST_EXACT)
    assert np.array_equal(ours, ref)


def test_crop_and_paste() -> None:
    a = np.zeros((100, 130), np.uint8)
    patch = np.full((10, 20), 7, np.uint8)
    b = np.frombuffer(raster.paste(a.tobytes(), 130, (65, 70, 20, 10), patch.tobytes()), np.uint8).reshape(100, 130)
    assert b.sum() == 7 * 200 and b[70, 65] == 7 and b[79, 84] == 7 and b[80, 85] == 0
    assert raster.crop(b.tobytes(), 130, (65, 70, 20, 10)) == patch.tobytes()
    with pytest.raises(ValueError):
        raster.crop(a.tobytes(), 130, (120, 0, 20, 10))


def test_guide_colours_and_alpha() -> None:
    u = bytes(range(256))
    rgba = np.frombuffer(raster.guide_rgba(u, "RGBA"), np.uint8).reshape(256, 4)
    assert tuple(rgba[0]) == (0, 0, 4, 0)  # sure: see-through
    assert rgba[255, 3] == 255 and rgba[255, 0] > 240 and rgba[255, 1] > 240  # very unsure: opaque yellow
    assert np.all(np.diff(rgba[:, 3].astype(int)) >= 0)  # alpha grows with uncertainty
    bgra = np.frombuffer(raster.guide_rgba(u, "BGRA"), np.uint8).reshape(256, 4)
    assert np.array_equal(bgra[:, [2, 1, 0, 3]], rgba)
    with pytest.raises(ValueError):
        raster.guide_rgba(u, "RGB")
