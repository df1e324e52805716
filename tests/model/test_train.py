import os

import numpy as np
import pytest
import torch

from clickmatte.model.network.registry import load_checkpoint
from clickmatte.model.train import BatchSource, TrainConfig, Trainer


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
    b = _batch(samples, cfg.radius)
    b2 = tr._iterate_clicks(b, samples, rng)
    assert all(len(s.clicks) >= n for s, n in zip(samples, before))
    assert b2["prev"].shape == (2, 1, 64, 64) and float(b2["prev"].std()) > 0


def test_iterative_soft_clicks_follow_the_simulator(tmp_path, make_crops):
    """With p_soft_clicks=1 the iterative click is the evaluation simulator's next click."""
    from clickmatte.model.evaluation.click_simulator import next_click
    root = tmp_path / "crops"
    make_crops(root, n=2, size=64)
    cfg = TrainConfig(data=str(root), backgrounds=str(tmp_path / "none"), out=str(tmp_path / "run"),
                      model="clickmatte-lite0-small", size=64, batch=2, pretrained=False,
                      cache_dir=str(tmp_path / "cache"), p_iterative=1.0, p_soft_clicks=1.0)
    tr = Trainer(cfg)
    rng = np.random.default_rng(0)
    samples = [tr.sampler.sample(rng) for _ in range(2)]
    b = _batch(samples, cfg.radius)
    with torch.no_grad():
        pred, _ = tr.model.net(b["rgb"], b["clicks"], b["prev"])
    expected = [next_click(s.alpha, pred[i, 0].numpy(), s.clicks) for i, s in enumerate(samples)]
    before = [list(s.clicks) for s in samples]
    tr._iterate_clicks(b, samples, np.random.default_rng(1))
    for s, old, exp in zip(samples, before, expected):
        assert s.clicks[: len(old)] == old
        if exp is not None:
            first_new = s.clicks[len(old)]
            assert (first_new.x, first_new.y, first_new.label) == (exp["x"], exp["y"], exp["label"])


def test_bad_coarse_scale_range_is_refused(tmp_path, make_crops):
    root = tmp_path / "crops"
    make_crops(root, n=1, size=64)
    for lo, hi in ((0.9, 0.5), (0.0, 0.5), (0.5, 1.5)):
        cfg = TrainConfig(data=str(root), backgrounds=str(tmp_path / "none"), out=str(tmp_path / "run"),
                          model="clickmatte-lite0-small", size=64, batch=1, pretrained=False,
                          cache_dir=str(tmp_path / "cache"), coarse_scale_min=lo, coarse_scale_max=hi)
        with pytest.raises(ValueError, match="coarse_scale"):
            Trainer(cfg)


def test_bad_native_share_and_rounds_are_refused(tmp_path, make_crops):
    root = tmp_path / "crops"
    make_crops(root, n=1, size=64)
    for field, value in (("p_coarse_native", 1.5), ("p_coarse_native", -0.1), ("iterative_rounds", 0)):
        cfg = TrainConfig(data=str(root), backgrounds=str(tmp_path / "none"), out=str(tmp_path / "run"),
                          model="clickmatte-lite0-small", size=64, batch=1, pretrained=False,
                          cache_dir=str(tmp_path / "cache"), **{field: value})
        with pytest.raises(ValueError, match=field):
            Trainer(cfg)


def test_native_share_runs_the_coarse_net_at_full_size(tmp_path, make_crops):
    root = tmp_path / "crops"
    make_crops(root, n=2, size=128)
    kw = dict(data=str(root), backgrounds=str(tmp_path / "none"), out=str(tmp_path / "run"),
              model="clickmatte-lite0-small", size=128, batch=2, pretrained=False, cache_dir=str(tmp_path / "cache"),
              coarse_scale_min=0.5, coarse_scale_max=0.5)
    b = Trainer(TrainConfig(**kw))._batch(0)
    sizes = {}
    for share in (0.0, 1.0):
        tr = Trainer(TrainConfig(**kw, p_coarse_native=share))
        sizes[share] = {tr._rescale(b, step)[0].shape[-1] for step in range(4)}
    assert sizes == {0.0: {64}, 1.0: {128}}


def test_refiner_batches_can_get_ritm_style_clicks(tmp_path, make_crops):
    """p_iterative_refiner: the refiner learns on the coarse alpha after corrective clicks (as at
    inference, where the matte has been clicked on); at 0 the refiner batches are as before."""
    root = tmp_path / "crops"
    make_crops(root, n=2, size=64)
    kw = dict(data=str(root), backgrounds=str(tmp_path / "none"), out=str(tmp_path / "run"),
              model="clickmatte-lite0-small", size=64, batch=2, pretrained=False, cache_dir=str(tmp_path / "cache"))
    plain = Trainer(TrainConfig(**kw))
    arrays, samples, iterate, _ = BatchSource(plain.sampler, plain.cfg, "refiner")[3]
    assert not iterate and samples == []
    with pytest.raises(ValueError, match="p_iterative_refiner"):
        Trainer(TrainConfig(**kw, p_iterative_refiner=2.0))
    tr = Trainer(TrainConfig(**kw, p_iterative_refiner=1.0))
    item = BatchSource(tr.sampler, tr.cfg, "refiner")[3]
    assert item[2] and len(item[1]) == 2
    assert all(np.array_equal(arrays[k], item[0][k]) for k in arrays)  # the same composites
    tr.begin_stage("refiner")
    before = [len(x.clicks) for x in item[1]]
    b = tr._prepare(item)
    assert sum(len(x.clicks) for x in item[1]) > sum(before)  # corrective clicks added
    with torch.no_grad():  # the previous alpha is now the net's own answer, not the sampled one
        assert not torch.equal(b["prev"], torch.from_numpy(arrays["prev"]).float())
    assert np.isfinite(tr.train_step(0, 2, item)["loss"])


def test_iterative_rounds_bound_the_corrective_clicks(tmp_path, make_crops):
    root = tmp_path / "crops"
    make_crops(root, n=2, size=64)
    added = {}
    for rounds in (1, 4):
        cfg = TrainConfig(data=str(root), backgrounds=str(tmp_path / "none"), out=str(tmp_path / "run"),
                          model="clickmatte-lite0-small", size=64, batch=2, pretrained=False,
                          cache_dir=str(tmp_path / "cache"), p_iterative=1.0, iterative_rounds=rounds)
        tr = Trainer(cfg)
        counts = []
        for seed in range(6):
            samples = [tr.sampler.sample(np.random.default_rng(seed)) for _ in range(2)]
            before = [len(x.clicks) for x in samples]
            b = _batch(samples, cfg.radius)
            tr._iterate_clicks(b, samples, np.random.default_rng(seed))
            counts += [len(x.clicks) - n for x, n in zip(samples, before)]
        added[rounds] = counts
    assert max(added[1]) <= 1 and max(added[4]) <= 4
    assert max(added[4]) > 1  # more than one round happens


def test_worker_processes_draw_the_same_batches_and_train(tmp_path, make_crops):
    """--workers N: a step's batch does not depend on where it is drawn; a run with workers trains."""
    root = tmp_path / "crops"
    make_crops(root, n=3, size=64)
    cfg = TrainConfig(data=str(root), backgrounds=str(tmp_path / "none"), out=str(tmp_path / "run"),
                      model="clickmatte-lite0-small", size=64, batch=2, pretrained=False, threads=1,
                      cache_dir=str(tmp_path / "cache"), p_iterative=0.5, workers=2, steps_matting=6,
                      steps_uncertainty=1, steps_refiner=1, val_every=1000, p_synth_obj=0.5, p_see_through=0.5,
                      p_camouflage=0.5, p_parts=0.5)
    tr = Trainer(cfg)
    assert tr.sampler.p_camouflage == 0.5 and tr.sampler.p_parts == 0.5
    in_process = [BatchSource(tr.sampler, cfg, "matting")[i] for i in range(3, 6)]
    from_workers = list(tr.stage_items("matting", 3, 6))
    assert len(from_workers) == 3
    for (a0, s0, it0, seed0), (a1, s1, it1, seed1) in zip(in_process, from_workers):
        assert (it0, seed0) == (it1, seed1)
        assert all(np.array_equal(a0[k], a1[k]) for k in a0)
        assert [c for s in s0 for c in s.clicks] == [c for s in s1 for c in s.clicks]
    tr.run()
    assert tr.stage == "refiner" and tr.step == 1
    assert all(np.isfinite(h["loss"]) for h in tr.history if "loss" in h)


def test_negative_workers_are_refused(tmp_path, make_crops):
    root = tmp_path / "crops"
    make_crops(root, n=1, size=64)
    cfg = TrainConfig(data=str(root), backgrounds=str(tmp_path / "none"), out=str(tmp_path / "run"),
                      model="clickmatte-lite0-small", size=64, batch=1, pretrained=False,
                      cache_dir=str(tmp_path / "cache"), workers=-1)
    with pytest.raises(ValueError, match="workers"):
        Trainer(cfg)


def test_packed_batches_unpack_to_the_samples(tmp_path, make_crops):
    """pack_batch -> the trainer's float tensors: the samples' pixels, targets and click disks, in a quarter
    of the bytes or less on the way."""
    from clickmatte.model.training.data import CompositeSampler, CropBank, pack_batch
    from clickmatte.model.training.batches import _to

    root = tmp_path / "crops"
    names = make_crops(root, n=2, size=64)
    sampler = CompositeSampler(CropBank(root, names, cache_dir=tmp_path / "cache"), [], size=64)
    samples = [sampler.sample(np.random.default_rng(i)) for i in range(3)]
    packed = pack_batch(samples, 15.0)
    got = _to(packed, torch.device("cpu"))
    assert sum(v.nbytes for v in packed.values()) * 3 < sum(v.numel() * 4 for v in got.values())
    for i, x in enumerate(samples):
        assert got["rgb"].dtype == torch.float32
        np.testing.assert_allclose(got["rgb"][i].numpy(), x.image.transpose(2, 0, 1) / 255.0, atol=1e-6)
        np.testing.assert_allclose(got["alpha"][i, 0].numpy(), x.alpha, atol=1e-3)
        for c in x.clicks:  # a disk of 1 around each click, in its label's channel
            ch = 0 if c.is_fg else 1
            assert got["clicks"][i, ch, int(round(c.y)), int(round(c.x))] == 1


def _batch(samples, radius):
    """The samples as the trainer gets them from a DataLoader worker: packed, then float tensors."""
    from clickmatte.model.training.data import pack_batch
    from clickmatte.model.training.batches import _to

    return _to(pack_batch(samples, radius), torch.device("cpu"))


def test_fixed_share_of_iterative_clicks_goes_to_the_deepest_true_points(tmp_path, make_crops):
    """p_fixed_clicks=1: every added click is blind to the error (deepest inside the true fg or bg, away from
    earlier clicks); 0: every added click is corrective."""
    from clickmatte.model.evaluation.click_simulator import deepest_click
    from clickmatte.model.training.data import pack_batch
    from clickmatte.model.training.batches import _to

    root = tmp_path / "crops"
    make_crops(root, n=2, size=64)

    def trainer(p: float) -> Trainer:
        return Trainer(TrainConfig(data=str(root), backgrounds=str(tmp_path / "none"), out=str(tmp_path / f"run{p}"),
                                   model="clickmatte-lite0-small", size=64, batch=2, pretrained=False, seed=0,
                                   cache_dir=str(tmp_path / "cache"), p_iterative=1.0, iterative_rounds=1,
                                   p_fixed_clicks=p))

    tr = trainer(1.0)
    samples = [tr.sampler.sample(np.random.default_rng(i)) for i in range(2)]
    before = [list(s.clicks) for s in samples]
    tr._iterate_clicks(_to(pack_batch(samples, tr.cfg.radius), torch.device("cpu")), samples, np.random.default_rng(5))
    for s, old in zip(samples, before):
        assert s.clicks[: len(old)] == old and len(s.clicks) == len(old) + 1
        new = s.clicks[-1]
        label = "fg" if new.is_fg else "bg"
        assert deepest_click(s.alpha, label, old) == {"x": new.x, "y": new.y, "label": label}
    # share 0: the added clicks are the corrective ones, at the net's own errors (as before the option existed)
    tr = trainer(0.0)
    samples = [tr.sampler.sample(np.random.default_rng(i)) for i in range(2)]
    with torch.no_grad():
        b = _to(pack_batch(samples, tr.cfg.radius), torch.device("cpu"))
        pred = tr.model.net(b["rgb"], b["clicks"], b["prev"])[0][:, 0].numpy()
    before = [list(s.clicks) for s in samples]
    tr._iterate_clicks(b, samples, np.random.default_rng(5))
    assert sum(len(s.clicks) - len(old) for s, old in zip(samples, before)) >= 1
    for i, (s, old) in enumerate(zip(samples, before)):
        for c in s.clicks[len(old):]:
            wrong = (s.alpha[c.y, c.x] > 0.5) != (pred[i, c.y, c.x] > 0.5)
            assert wrong  # a corrective click lands where the net's answer was on the wrong side
    with pytest.raises(ValueError, match="p_fixed_clicks"):
        trainer(1.5)
