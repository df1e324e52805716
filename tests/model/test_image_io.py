"""read_alpha: one reader of mattes and masks for training and evaluation (8 and 16 bits, gray or equal RGB)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from clickmatte.model.image_io import read_alpha, read_rgb


def _ramp(dtype: type, full: int) -> np.ndarray:
    return np.linspace(0, full, 40 * 48).reshape(40, 48).round().astype(dtype)


def test_8_and_16_bit_pngs_read_to_the_same_float_alpha(tmp_path: Path) -> None:
    a8 = _ramp(np.uint8, 255)
    a16 = a8.astype(np.uint16) * 257  # the same values at 16 bits
    assert cv2.imwrite(str(tmp_path / "a8.png"), a8) and cv2.imwrite(str(tmp_path / "a16.png"), a16)
    got8, got16 = read_alpha(tmp_path / "a8.png"), read_alpha(tmp_path / "a16.png")
    assert got8.dtype == got16.dtype == np.float32 and got8.shape == (40, 48)
    assert np.array_equal(got8, a8.astype(np.float32) / 255.0)  # what training has always used
    assert got16.min() == 0.0 and got16.max() == 1.0
    np.testing.assert_allclose(got16, got8, atol=1e-6)
    fine = _ramp(np.uint16, 65535)  # 16-bit steps finer than 8 bits survive
    assert cv2.imwrite(str(tmp_path / "fine.png"), fine)
    np.testing.assert_allclose(read_alpha(tmp_path / "fine.png"), fine / 65535.0, atol=1e-7)
    assert len(np.unique(read_alpha(tmp_path / "fine.png"))) > 256


def test_colour_files_only_when_unambiguous(tmp_path: Path) -> None:
    a = _ramp(np.uint8, 255)
    gray3 = np.repeat(a[..., None], 3, axis=2)
    cv2.imwrite(str(tmp_path / "rgb.png"), gray3)
    assert np.array_equal(read_alpha(tmp_path / "rgb.png"), a / np.float32(255.0))
    cv2.imwrite(str(tmp_path / "rgba.png"), np.dstack([gray3, np.full_like(a, 255)]))
    assert np.array_equal(read_alpha(tmp_path / "rgba.png"), read_alpha(tmp_path / "rgb.png"))
    rgba16 = np.dstack([gray3.astype(np.uint16) * 257, np.full(a.shape, 65535, np.uint16)])
    cv2.imwrite(str(tmp_path / "rgba16.png"), rgba16)
    np.testing.assert_allclose(read_alpha(tmp_path / "rgba16.png"), read_alpha(tmp_path / "rgb.png"), atol=1e-6)
    cases = {"colour.png": np.dstack([a, a, 255 - a]), "see_through.png": np.dstack([gray3, a])}
    for name, arr in cases.items():
        cv2.imwrite(str(tmp_path / name), arr)
    with pytest.raises(ValueError, match="unequal channels"):
        read_alpha(tmp_path / "colour.png")
    with pytest.raises(ValueError, match="non-opaque"):
        read_alpha(tmp_path / "see_through.png")
    (tmp_path / "junk.png").write_bytes(b"no png")
    with pytest.raises(ValueError, match="cannot read"):
        read_alpha(tmp_path / "junk.png")


def test_float_files_keep_their_values_within_0_1(tmp_path: Path) -> None:
    a = np.linspace(0, 1, 40 * 48, dtype=np.float32).reshape(40, 48)
    assert cv2.imwrite(str(tmp_path / "a.tiff"), a)
    assert np.array_equal(read_alpha(tmp_path / "a.tiff"), a)
    assert cv2.imwrite(str(tmp_path / "over.tiff"), a * 255)
    with pytest.raises(ValueError, match="outside"):
        read_alpha(tmp_path / "over.tiff")


def test_read_rgb_gives_rgb_order(tmp_path: Path) -> None:
    bgr = np.zeros((32, 40, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's order
    cv2.imwrite(str(tmp_path / "b.png"), bgr)
    rgb = read_rgb(tmp_path / "b.png")
    assert rgb.shape == (32, 40, 3) and rgb[0, 0].tolist() == [0, 0, 200]
    with pytest.raises(ValueError, match="cannot read"):
        read_rgb(tmp_path / "missing.png")
