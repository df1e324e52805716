"""Pixel conversions and the LRU session cache (pure numpy, no daemon)."""
from __future__ import annotations

import numpy as np
import pytest

from clickmatte.backend.images import encode_alpha, encode_uncertainty, image_to_rgb8, mask_to_bool, preview_shape
from clickmatte.backend.sessions import SessionCache
from clickmatte.plugin.protocol import BufferSpec, ProtocolError


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.uint8)


@pytest.mark.parametrize("order", ["RGB", "BGR", "RGBA", "BGRA"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_image_to_rgb8_undoes_every_wire_format(rgb, order, dtype):
    a = np.full((5, 7, 1), 77, np.uint8)
    arr = {"RGB": rgb, "BGR": rgb[:, :, ::-1], "RGBA": np.concatenate([rgb, a], 2),
           "BGRA": np.concatenate([rgb[:, :, ::-1], a], 2)}[order]
    if dtype == "uint16":
        arr = arr.astype("<u2") * 257
    spec = BufferSpec("image", 7, 5, arr.shape[2], dtype, order)
    out = image_to_rgb8(spec, np.ascontiguousarray(arr).tobytes())
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3) and out.flags.c_contiguous
    assert np.array_equal(out, rgb)


def test_uint16_rounds_to_nearest_8bit():
    px = np.array([[[0, 128, 32767], [65535, 257 * 200 + 128, 257 * 200 + 129]]], "<u2")  # 1x2 RGB
    out = image_to_rgb8(BufferSpec("image", 2, 1, 3, "uint16", "RGB"), px.tobytes())
    assert out.tolist() == [[[0, 0, 127], [255, 200, 201]]]


def test_encode_alpha_and_uncertainty():
    alpha = np.array([[0.0, 0.5, 1.0, 1.2]], np.float32)
    assert encode_alpha(alpha).tolist() == [[0, 128, 255, 255]]
    a16 = encode_alpha(alpha, "uint16")
    assert a16.dtype == np.dtype("<u2") and a16.tolist() == [[0, 32768, 65535, 65535]]
    sigma = np.array([[0.0, 0.125, 0.25, 3.0]], np.float32)
    assert encode_uncertainty(sigma).tolist() == [[0, 128, 255, 255]]
    with pytest.raises(ValueError):
        encode_alpha(alpha, "float32")


def test_preview_shrinks_the_long_side():
    assert preview_shape(150, 200, 50) == (38, 50)
    assert preview_shape(150, 200, 500) == (150, 200)
    assert preview_shape(150, 200, None) == (150, 200)
    big = np.ones((150, 200), np.float32)
    assert encode_alpha(big, preview=100).shape == (75, 100)


def test_mask_to_bool():
    m = mask_to_bool(BufferSpec("mask", 3, 2, 1), bytes([0, 1, 255, 0, 0, 9]))
    assert m.tolist() == [[False, True, True], [False, False, True]]


def img(seed, h=10, w=10):
    return np.full((h, w, 3), seed, np.uint8)


def test_cache_evicts_least_recently_used_session_by_count():
    c = SessionCache(max_sessions=2, max_bytes=10 ** 9)
    e = c.add_image("d1", img(1))
    s1, s2 = c.create_session(e), c.create_session(e)
    c.get(s1.id)  # s1 is now the most recent
    s3 = c.create_session(e)
    assert set(c.sessions) == {s1.id, s3.id}
    with pytest.raises(ProtocolError) as ei:
        c.get(s2.id)
    assert ei.value.code == "unknown_session"
    assert len(s1.id) >= 32 and s1.id != s3.id


def test_latest_session_is_the_images_most_recently_used_and_counts_as_used():
    c = SessionCache(max_sessions=3, max_bytes=10 ** 9)
    a, b = c.add_image("a", img(1)), c.add_image("b", img(2))
    assert c.latest_session("a") is None
    a1, a2, b1 = c.create_session(a), c.create_session(a), c.create_session(b)
    assert c.latest_session("a") is a2 and c.latest_session("b") is b1
    c.get(a1.id)
    assert c.latest_session("a") is a1  # the most recently used, not the newest
    assert c.latest_session("b") is b1  # a resumed session counts as used: a2 is now the LRU
    a3 = c.create_session(a)
    assert set(c.sessions) == {a1.id, b1.id, a3.id}
    assert c.latest_session("a") is a3
    c.close(a3.id)
    assert c.latest_session("a") is a1 and c.latest_session("nope") is None


def test_cache_evicts_by_bytes_unused_images_first():
    per_image = 10 * 10 * 3
    c = SessionCache(max_sessions=10, max_bytes=3 * per_image + 10 * 10 * 8 - 1)
    old = c.add_image("old", img(1))
    s = c.create_session(c.add_image("a", img(2)))
    c.create_session(c.add_image("b", img(3)))
    assert "old" in c.images and c.nbytes == 3 * per_image
    s.alpha = np.zeros((10, 10), np.float32)
    s.sigma = np.zeros((10, 10), np.float32)
    c.evict(keep=s)
    assert "old" not in c.images  # unused image goes before any session
    assert len(c.sessions) == 2 and c.nbytes <= c.max_bytes
    assert c.find_image("a") is s.image and c.find_image("old") is None
    del old


def test_cache_refuses_an_image_that_can_never_fit():
    c = SessionCache(max_sessions=2, max_bytes=1000)
    with pytest.raises(ProtocolError) as ei:
        c.check_fits(100, 100)
    assert ei.value.code == "too_large"
    c.check_fits(5, 5)


def test_session_bytes_count_the_kept_previous_alpha():
    c = SessionCache(max_sessions=10, max_bytes=10 ** 9)
    s = c.create_session(c.add_image("a", img(1)))
    s.alpha = np.zeros((10, 10), np.float32)
    s.sigma = np.zeros((10, 10), np.float32)
    before = c.nbytes
    s.prev_in = np.zeros((10, 10), np.uint8)
    assert c.nbytes == before + 100
