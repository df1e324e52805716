import copy

import numpy as np
import pytest
import torch

from clickmatte.model.inference.predictor import Predictor
from clickmatte.model.training.refiner_tuning import finetune, harvest, patch_gain


def _disc(size: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    alpha = np.clip((size * 0.3 - np.hypot(yy - size / 2, xx - size / 2)) / 3 + 0.5, 0, 1)
    img = np.array([210, 60, 40]) * alpha[..., None] + rng.uniform(0, 255, 3) * (1 - alpha[..., None])
    return img.astype(np.uint8), np.rint(alpha * 255).astype(np.uint8)


@pytest.fixture()
def model(small_model):
    return copy.deepcopy(small_model)  # the refiner is trained in place: keep the shared fixture untouched


def test_harvest_crops_the_predictors_own_states(model):
    pred = Predictor(model, device="cpu", working_size=96)
    pairs = [_disc(seed=0), _disc(seed=1)]
    pool = harvest(pred, pairs, clicks=2, top_n=3, n_random=2)
    k, m = model.refiner.config.patch_size, model.refiner.config.margin
    assert pool.x.shape[1:] == (5, k + 2 * m, k + 2 * m) and pool.gt.shape[1:] == (1, k, k)
    assert set(pool.group.tolist()) == {0, 1}
    assert (pool.rank == -1).sum() == 2 * 2 * 2  # 2 random windows per state, 2 states per image
    assert 0 <= pool.rank.max() < 3
    # the alpha channel is the predictor's answer: re-running the first click gives the same patch
    pred.set_image(pairs[0][0])
    from clickmatte.model.evaluation.click_simulator import next_click

    c = next_click(pairs[0][1], None, [])
    alpha, sigma = pred.predict([c])
    from clickmatte.model.network.refiner import crop_patches, select_patches

    (box,) = select_patches(sigma, 1, k)
    expected = crop_patches(alpha[..., None], [box], m, k)[0, 0]
    np.testing.assert_allclose(pool.x[0, 3].astype(np.float32), expected, atol=1e-3)
    assert pool.x[:, :3].min() >= 0 and pool.x[:, :3].max() <= 1
    with pytest.raises(ValueError):
        harvest(pred, pairs, clicks=0)
    with pytest.raises(ValueError, match="no patches"):
        harvest(pred, [])


def test_finetune_lowers_the_loss_and_patch_gain_reports_it(model):
    pred = Predictor(model, device="cpu", working_size=96)
    pool = harvest(pred, [_disc(seed=2)], clicks=2, top_n=2, n_random=2)
    torch.manual_seed(0)
    before = patch_gain(model.refiner, pool, top=2)
    assert before["patches"] == (pool.rank >= 0).sum() > 0 and before["sad"] == pytest.approx(0.0, abs=1e-6)  # zero head: no change yet
    losses = finetune(model.refiner, pool, steps=40, lr=3e-3, batch=8)
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    after = patch_gain(model.refiner, pool, top=2)
    assert after["sad"] < 0  # the refined patches are now closer to the ground truth than the coarse alpha
    assert not model.refiner.training
    with pytest.raises(ValueError):
        finetune(model.refiner, pool, steps=-1)


def test_finetune_on_a_device_with_cosine_schedule_reports_each_evaluation(model):
    pred = Predictor(model, device="cpu", working_size=96)
    pool = harvest(pred, [_disc(seed=3)], clicks=2, top_n=2, n_random=1)
    seen: list[tuple[int, dict]] = []
    finetune(model.refiner, pool, steps=6, lr=1e-3, batch=4, log_every=3, val=pool, device="cpu", cosine=True,
             on_log=lambda step, gain: seen.append((step, gain)))
    assert [s for s, _ in seen] == [3, 6]
    assert all(set(g) == {"sad", "sq", "patches"} for _, g in seen)
    assert next(model.refiner.parameters()).device.type == "cpu"


def _script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "scripts" / "finetune_refiner.py"
    spec = importlib.util.spec_from_file_location("finetune_refiner_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_finetune_script_shares_one_harvest_and_keeps_the_best(tmp_path, make_crops, small_model, capsys):
    from clickmatte.model.network.registry import load_checkpoint, save_checkpoint

    script = _script()
    make_crops(tmp_path / "data", n=3, size=64)
    ckpt = tmp_path / "in.pt"
    save_checkpoint(small_model, ckpt)
    pools = [tmp_path / "p64.npz", tmp_path / "p32.npz"]
    args = ["--data", str(tmp_path / "data"), "--checkpoint", str(ckpt), "--working-sizes", "64,32",
            "--pool", ",".join(map(str, pools)), "--steps", "4", "--batch", "4", "--eval-every", "2",
            "--val-every", "3", "--cosine", "--out", str(tmp_path / "out.pt"), "--best-out", str(tmp_path / "best.pt")]
    assert script.main(args) == 0
    out = capsys.readouterr().out
    assert out.count("harvested") == 2 and all(p.is_file() for p in pools)
    final = load_checkpoint(tmp_path / "out.pt").meta["refiner_finetune"]
    assert final["steps"] == 4 and final["cosine"] and final["train_crops"] == 3 and final["working_sizes"] == [64, 32]
    best = load_checkpoint(tmp_path / "best.pt").meta["refiner_finetune"]
    assert best["steps"] in (2, 4) and best["held_out_gain"]["patches"] > 0
    # a second run loads both harvests instead of redoing them
    assert script.main(args) == 0
    out = capsys.readouterr().out
    assert "harvested" not in out and out.count("loaded") == 2
    with pytest.raises(SystemExit, match="one file per working size"):
        script.main(args[:6] + ["--pool", str(pools[0])] + args[8:])
    with pytest.raises(SystemExit, match="must end in .npz"):
        script.main(args[:6] + ["--pool", f"{tmp_path / 'a.npy'},{tmp_path / 'b.npz'}"] + args[8:])
