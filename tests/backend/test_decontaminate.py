"""The daemon's ``foreground`` op (decontaminate colours) on the real lemur photo, real daemon process."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clickmatte.plugin.client import DaemonClient, DaemonError

LEMUR = Path(__file__).resolve().parents[2] / "examples" / "lemur.png"
LONG_SIDE = 256  # within the test daemon's 0.05 MP limit


def _lemur() -> np.ndarray:
    img = Image.open(LEMUR).convert("RGB")
    scale = LONG_SIDE / max(img.size)
    return np.asarray(img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS))


def test_foreground_colours_near_the_white_fur_lose_the_background_spill(tcp_daemon) -> None:
    rgb = _lemur()
    h, w = rgb.shape[:2]
    with DaemonClient(tcp_daemon.endpoint, timeout_ms=120000, retries=0) as c:
        s = c.open(rgb.tobytes(), w, h, 3, "uint8", "RGB").session
        m = c.predict(s, [{"x": w * 0.5, "y": h * 0.55, "label": "fg"}, {"x": 5, "y": 5, "label": "bg"}],
                      prev_alpha=False)
        alpha = np.frombuffer(m.alpha, np.uint8).reshape(h, w)
        r = c.foreground(s, m.alpha, w, h)
        assert (r.width, r.height) == (w, h)
        fg = np.frombuffer(r.rgb, np.uint8).reshape(h, w, 3)
        with pytest.raises(DaemonError) as ei:  # a mask of another size is refused, not guessed at
            c.foreground(s, bytes(w * h // 2), w, h // 2)
        assert ei.value.code == "bad_request"
    # soft edge pixels of bright fur: partly transparent, and bright in the photo
    soft = (alpha > 25) & (alpha < 230)
    bright = rgb.astype(np.float64).mean(axis=2) > 150
    sel = soft & bright
    assert sel.sum() > 50, f"too few bright soft-edge pixels ({sel.sum()}) to judge"
    dist = lambda img: float(np.abs(255.0 - img[sel].astype(np.float64)).mean())  # noqa: E731
    before, after = dist(rgb), dist(fg)
    print(f"bright fur at the soft edge ({int(sel.sum())} px): mean distance to white {before:.1f} -> {after:.1f}")
    assert after < before
    # where the matte is sure, the colours stay the photo's own
    sure = alpha == 255
    assert np.abs(fg[sure].astype(int) - rgb[sure].astype(int)).mean() < 2.0
