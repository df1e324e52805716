import os

import numpy as np
import torch

from clickmatte.model.registry import load_checkpoint
from clickmatte.model.train import TrainConfig, Trainer


def test_a_few_steps_lower_the_loss_and_export_resumes(tmp_path, make_crops):
    root = tmp_path / "crops"
    make_crops(root, n=4, size=64)
    cfg = TrainConfig(
        data=str(root), backgrounds=str(tmp_path / "none"), out=str(tmp_path / "run"), model="clickmatte-lite0-small",
        size=64, batch=4, steps_matting=25, steps_uncertainty=2, steps_refiner=2, lr=3e-3, ckpt_every=5,
        val_every=1000, pretrained=False, cache_dir=str(tmp_path / "cache"), threads=1, p_iterative=0.5,
        export=str(tmp_path / "out.pt"),
    )
    torch.manual_seed(0)
    tr = Trainer(cfg)
    tr._set_train_mode()
    # the same fixed batch before and after training
    losses = [tr.train_step(0, 25)["loss"]]
    tr.run()
    model = tr.model.eval()
    b = tr._batch(0)
    with torch.no_grad():
        a, _ = model.net(b["rgb"], b["clicks"], b["prev"])
    after = float((a - b["alpha"]).abs().mean())
    with torch.no_grad():
        fresh = Trainer(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "run2")})).model.eval()
        a0, _ = fresh.net(b["rgb"], b["clicks"], b["prev"])
    before = float((a0 - b["alpha"]).abs().mean())
    assert after < before * 0.8, (before, after)
    assert os.path.isfile(tmp_path / "run" / "state.pt")
    m = load_checkpoint(tmp_path / "out.pt")
    assert m.meta["complete"] and m.meta["step"] == 2
    # resuming a finished run does nothing and keeps the weights
    tr2 = Trainer(cfg)
    assert tr2.stage == "refiner" and tr2.step == 2
    assert np.isfinite(losses[0])


def test_iterative_clicks_add_corrections_and_feed_prediction_back(tmp_path, make_crops):
    root = tmp_path / "crops"
    make_crops(root, n=2, size=64)
    cfg = TrainConfig(data=str(root), backgrounds=str(tmp_path / "none"), out=str(tmp_path / "run"),
                      model="clickmatte-lite0-small", size=64, batch=2, pretrained=False,
                      cache_dir=str(tmp_path / "cache"), p_iterative=1.0)
    tr = Trainer(cfg)
    rng = np.random.default_rng(0)
    samples = [tr.sampler.sample(rng) for _ in range(2)]
    before = [len(s.clicks) for s in samples]
    from clickmatte.model.data import collate
    b = {k: torch.from_numpy(v) for k, v in collate(samples, cfg.radius).items()}
    b2 = tr._iterate_clicks(b, samples, rng)
    assert all(len(s.clicks) >= n for s, n in zip(samples, before))
    assert b2["prev"].shape == (2, 1, 64, 64) and float(b2["prev"].std()) > 0
