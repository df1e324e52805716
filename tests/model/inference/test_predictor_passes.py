"""The predictor's passes with the shipped weights: alpha-only passes give the same alpha as full ones, and
only the final plain pass of a click runs the uncertainty decoder."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from clickmatte.model.inference.predictor import Predictor
from clickmatte.model.network.registry import DEFAULT_CHECKPOINT, ClickMatteModel, load_checkpoint

needs_weights = pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason="needs the shipped weights")


@pytest.fixture(scope="module")
def shipped() -> ClickMatteModel:
    torch.set_num_threads(1)
    return load_checkpoint(DEFAULT_CHECKPOINT).eval()


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    disc = np.hypot(yy - h / 2, xx - w / 2) < 0.3 * min(h, w)
    img = np.where(disc[..., None], [200, 150, 120], [40, 90, 60]) + rng.integers(0, 20, (h, w, 3))
    return img.astype(np.uint8)


@needs_weights
def test_forward_alpha_is_forwards_alpha(shipped: ClickMatteModel) -> None:
    """forward_alpha (no uncertainty decoder) returns exactly the alpha of forward, at any size."""
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 70, 90, generator=g)
    clicks = (torch.rand(2, 2, 70, 90, generator=g) > 0.95).float()
    prev = torch.rand(2, 1, 70, 90, generator=g)
    with torch.inference_mode():
        a, s = shipped.net(rgb, clicks, prev)
        a2 = shipped.net.forward_alpha(rgb, clicks, prev)
        s_none = shipped.net(rgb, clicks, None)[1]
    assert a2.shape == a.shape == (2, 1, 70, 90)
    assert torch.equal(a, a2)
    assert float((s - s_none).abs().max()) > 0  # prev does reach the outputs


@needs_weights
@pytest.mark.parametrize("prev", [False, True])
def test_one_uncertainty_decoder_run_per_click(shipped: ClickMatteModel, prev: bool) -> None:
    """With flip TTA, prior pass and context pass all on, a click runs the uncertainty decoder once
    (the plain working-size pass) and the alpha decoder 4 times (context: 2, working: 2)."""
    calls = {"alpha": 0, "sigma": 0}
    hooks = [shipped.net.alpha_decoder.register_forward_hook(lambda *_: calls.__setitem__("alpha", calls["alpha"] + 1)),
             shipped.net.sigma_decoder.register_forward_hook(lambda *_: calls.__setitem__("sigma", calls["sigma"] + 1))]
    try:
        p = Predictor(shipped, device="cpu", working_size=160, context_size=96, flip_tta=True, prior_pass=True)
        p.set_image(_photo(120, 160))
        pa = np.full((120, 160), 128, np.uint8) if prev else None
        alpha, sigma = p.predict([(80, 60, "fg")], prev_alpha=pa)
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"alpha": 4, "sigma": 1}
    assert alpha.shape == sigma.shape == (120, 160)
    assert alpha[60, 80] > 0.5 and float(sigma.min()) > 0


@needs_weights
def test_preview_is_one_small_pass_and_keeps_the_last_matte(shipped: ClickMatteModel) -> None:
    """predict(preview=N): outputs at long side N, one alpha- and one sigma-decoder run at the preview working
    size, the same object as the full answer, and the predictor's last full-size matte untouched."""
    p = Predictor(shipped, device="cpu", working_size=192, context_size=96, preview_working_size=64)
    img = _photo(150, 200)
    p.set_image(img)
    clicks = [(100, 75, "fg"), (5, 5, "bg")]
    full, full_sigma = p.predict(clicks)
    calls: list[tuple[int, ...]] = []
    hook = shipped.net.encoder.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape)))
    try:
        a, s = p.predict(clicks, prev_alpha=(full * 255).astype(np.uint8), preview=100)
    finally:
        hook.remove()
    assert calls == [(1, 6, 64, 64)]  # one pass at 64 x 48, padded to 64 x 64
    assert a.shape == s.shape == (75, 100) and a.dtype == s.dtype == np.float32
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0 and float(s.min()) > 0
    small = full[::2, ::2] > 0.5
    iou = np.logical_and(a > 0.5, small).sum() / np.logical_or(a > 0.5, small).sum()
    assert iou > 0.8
    assert p.alpha is full and p.uncertainty is full_sigma
    with pytest.raises(ValueError):
        p.predict(clicks, preview=0)
