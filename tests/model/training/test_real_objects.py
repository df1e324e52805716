from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from clickmatte.model.training.losses import laplace_nll, mask_loss
from clickmatte.model.training.real_objects import (MixedSampler, RealObjectBank, RealObjectSampler, edge_weight,
                                           mask_names)
from clickmatte.model.train import BatchSource, TrainConfig, Trainer

DUTS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "real_objects" / "duts_tr"


def _write_photos(root: Path, n: int = 3, h: int = 90, w: int = 120) -> None:
    (root / "image").mkdir(parents=True)
    (root / "mask").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (w // 2, h // 2), (w // 4, h // 3), 0, 0, 360, 255, -1)
        cv2.imwrite(str(root / "image" / f"p{i}.jpg"), img)
        cv2.imwrite(str(root / "mask" / f"p{i}.png"), m)
    cv2.imwrite(str(root / "image" / "orphan.jpg"), img)  # no mask: not listed


def test_mask_names_need_both_files(tmp_path):
    _write_photos(tmp_path)
    assert mask_names(tmp_path) == ["p0", "p1", "p2"]
    with pytest.raises(ValueError):
        mask_names(tmp_path / "missing")


def test_edge_weight_leaves_out_the_band_and_soft_pixels():
    m = np.zeros((40, 40), np.float32)
    m[10:30, 10:30] = 1.0
    m[10, 10:30] = 0.5  # an anti-aliased row
    w = edge_weight(m, band=3)
    assert w[20, 20] == 1 and w[2, 2] == 1  # deep inside, far outside
    assert w[10, 20] == 0  # soft pixel
    assert w[20, 11] == 0 and w[20, 8] == 0  # within 3 px of the edge on either side
    assert w[20, 15] == 1 and w[20, 4] == 1
    assert edge_weight(m, band=0)[20, 10] == 1  # band 0 keeps definite pixels next to the edge
    with pytest.raises(ValueError):
        edge_weight(m, band=-1)


def test_sampler_squares_the_photo_and_keeps_clicks_where_the_mask_is_trusted(tmp_path):
    _write_photos(tmp_path)
    bank = RealObjectBank(tmp_path, size=64)
    assert len(bank) == 3 and max(bank.images[0].shape[:2]) == 64
    smp = RealObjectSampler(bank, 64)
    rng = np.random.default_rng(1)
    for _ in range(10):
        s = smp.sample(rng)
        assert s.kind == "real" and s.image.shape == (64, 64, 3) and s.alpha.shape == (64, 64)
        assert s.weight is not None and s.weight.shape == (64, 64)
        # the padding (the photo is 4:3, so at least a quarter of the square) has weight 0
        assert s.weight.mean() < 0.8
        for c in s.clicks:
            assert s.weight[int(c.y), int(c.x)] == 1
            assert (s.alpha[int(c.y), int(c.x)] > 0.5) == c.is_fg
        assert s.clicks[0].is_fg


def test_mixed_sampler_draws_both_kinds(tmp_path, make_crops):
    _write_photos(tmp_path / "real")
    make_crops(tmp_path / "crops", n=2, size=64)
    cfg = TrainConfig(data=str(tmp_path / "crops"), backgrounds=str(tmp_path / "none"), out=str(tmp_path / "run"),
                      model="clickmatte-lite0-small", size=64, batch=8, pretrained=False,
                      cache_dir=str(tmp_path / "cache"), real_objects=str(tmp_path / "real"), p_real=0.5)
    tr = Trainer(cfg)
    assert isinstance(tr.sampler, MixedSampler)
    arrays, *_ = BatchSource(tr.sampler, cfg, "matting")[0]
    kinds = arrays["is_mask"].astype(bool)
    assert kinds.any() and not kinds.all()
    assert (arrays["weight"][~kinds] == 1).all() and (arrays["weight"][kinds] == 0).any()
    # the refiner learns from matting ground truth only
    arrays, *_ = BatchSource(tr._sampler_for("refiner"), cfg, "refiner")[0]
    assert not arrays["is_mask"].any()
    for stage in ("matting", "uncertainty"):
        tr.begin_stage(stage)
        logs = tr.train_step(0, 10)
        assert np.isfinite(logs["loss"])
    with pytest.raises(ValueError):
        Trainer(TrainConfig(**{**cfg.__dict__, "real_objects": "", "out": str(tmp_path / "r2")}))


def test_mask_loss_ignores_weighted_out_pixels():
    t = torch.zeros(1, 1, 8, 8)
    t[..., 4:] = 1
    w = torch.ones_like(t)
    w[..., 3:5] = 0  # the band
    good = t.clone()
    bad_in_band = t.clone()
    bad_in_band[..., 3:5] = 1 - bad_in_band[..., 3:5]
    assert mask_loss(bad_in_band, t, w) == pytest.approx(float(mask_loss(good, t, w)), abs=1e-6)
    wrong = 1 - t
    assert mask_loss(wrong, t, w) > mask_loss(good, t, w) + 1
    # the Laplace NLL with a weight only counts the weighted pixels
    sigma = torch.full_like(t, 0.1)
    assert float(laplace_nll(sigma, bad_in_band, t, w)) == pytest.approx(float(laplace_nll(sigma, good, t, w)))
    assert float(laplace_nll(sigma, bad_in_band, t)) > float(laplace_nll(sigma, good, t))


@pytest.mark.skipif(not DUTS.is_dir(), reason="../shared/data/real_objects/duts_tr not present")
def test_real_duts_photos_load_and_sample():
    bank = RealObjectBank(DUTS, size=160, limit=3)
    s = RealObjectSampler(bank, 160).sample(np.random.default_rng(0))
    assert s.image.shape == (160, 160, 3)
    trusted = s.weight > 0
    assert ((s.alpha[trusted] < 0.05) | (s.alpha[trusted] > 0.95)).all()
    assert (s.alpha[trusted] > 0.95).any()
