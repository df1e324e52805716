import numpy as np
import pytest

from clickmatte.model.training.click_sampling import corrective_clicks, degrade_alpha, sample_clicks
from clickmatte.model.training.data import CompositeSampler, CropBank
from clickmatte.model.training.synthetic import (add_strands, camouflage, part_masks, see_through, synth_background,
                                                 synth_object, synth_shape)


@pytest.fixture()
def bank(tmp_path, make_crops):
    names = make_crops(tmp_path / "crops")
    return CropBank(tmp_path / "crops", names, cache_dir=tmp_path / "cache")


def test_foreground_estimate_recomposes_the_image(bank):
    for img, a, f in zip(bank.images, bank.alphas, bank.foregrounds):
        solid = a > 0.99
        # where alpha is 1 the estimated foreground equals the image
        assert np.abs(f[solid] * 255 - img[solid]).max() <= 2


def test_composites_are_consistent_image_alpha_pairs(bank):
    bgs = [synth_background(np.random.default_rng(i), 48) for i in range(3)]
    sampler = CompositeSampler(bank, bgs, size=48, p_original=0.0, p_multi=0.0, p_prev=0.0, p_synth_bg=0.0)
    rng = np.random.default_rng(1)
    for _ in range(5):
        s = sampler.sample(rng)
        assert s.image.shape == (48, 48, 3) and s.alpha.shape == (48, 48)
        assert s.alpha.min() >= 0 and s.alpha.max() <= 1
        # fully opaque pixels show the foreground, which is one flat colour per crop (its colour is
        # augmented, but uniformly): they are near-uniform, unlike the textured background
        solid = s.alpha > 0.99
        if solid.sum() > 20:
            assert s.image[solid].astype(np.float32).std(axis=0).max() < 12


def test_multi_object_targets_follow_the_clicks(bank):
    sampler = CompositeSampler(bank, [], size=64, p_original=0.0, p_multi=1.0, p_prev=0.0)
    rng = np.random.default_rng(2)
    seen = 0
    for _ in range(20):
        s = sampler.sample(rng)
        assert s.kind == "multi"
        for c in s.clicks:
            v = s.alpha[int(c.y), int(c.x)]
            assert (v > 0.95) if c.is_fg else (v < 0.05)
        seen += 1
    assert seen == 20


def test_click_count_is_geometric_and_clicks_land_right():
    yy, xx = np.mgrid[0:100, 0:100]
    target = ((yy - 50) ** 2 + (xx - 50) ** 2 < 30 ** 2).astype(np.float32)
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(600):
        cl = sample_clicks(rng, target, max_clicks=1000)
        counts.append(len(cl))
        assert cl[0].is_fg
        for c in cl:
            assert target[int(c.y), int(c.x)] == (1.0 if c.is_fg else 0.0)
    # Geometric(1/6): mean 6, sd ~5.5 -> the mean of 600 draws lies within ~0.7 of 6 with >99.9 %
    assert abs(np.mean(counts) - 6) < 0.9
    assert min(counts) == 1


def test_corrective_clicks_hit_the_errors():
    target = np.zeros((80, 80), np.float32)
    target[10:60, 10:60] = 1
    prev = target.copy()
    prev[20:50, 20:50] = 0  # missed foreground in the middle
    prev[65:78, 65:78] = 1  # false positive
    (c1, c2) = corrective_clicks(np.random.default_rng(0), prev, target, 2)
    assert c1.is_fg and 20 <= c1.x < 50 and 20 <= c1.y < 50
    assert not c2.is_fg and 65 <= c2.x < 78 and 65 <= c2.y < 78


def test_degrade_alpha_stays_in_range_and_differs():
    target = np.zeros((64, 64), np.float32)
    target[16:48, 16:48] = 1
    d = degrade_alpha(np.random.default_rng(5), target)
    assert d.shape == target.shape and 0 <= d.min() and d.max() <= 1
    assert np.abs(d - target).sum() > 0


def test_pack_batch_holds_the_samples(bank):
    from clickmatte.model.training.data import pack_batch

    sampler = CompositeSampler(bank, [], size=32)
    rng = np.random.default_rng(0)
    samples = [sampler.sample(rng) for _ in range(3)]
    b = pack_batch(samples, radius=5)
    assert b["rgb"].shape == (3, 3, 32, 32) and b["clicks"].shape == (3, 2, 32, 32)
    for i, x in enumerate(samples):
        np.testing.assert_array_equal(b["rgb"][i], x.image.transpose(2, 0, 1))
        fg = np.zeros((32, 32), bool)
        for c in x.clicks:
            if c.is_fg:
                fg[int(round(c.y)), int(round(c.x))] = True
        assert b["clicks"][i, 0][fg].min(initial=1) == 1  # every fg click lies in a disk of its channel
        assert (b["clicks"][i, 0] > 0).sum() >= fg.sum()
        prev = x.prev_alpha if x.prev_alpha is not None else np.zeros((32, 32), np.float32)
        np.testing.assert_allclose(b["prev"][i, 0].astype(np.float32), prev, atol=1e-3)


def test_soft_clicks_binarise_at_half_like_the_simulator():
    # a soft ramp: nothing is definite foreground (> 0.95), but the right half is > 0.5
    target = np.tile(np.linspace(0.0, 0.9, 100, dtype=np.float32), (60, 1))
    rng = np.random.default_rng(3)
    hard = sample_clicks(rng, target, max_clicks=50)
    assert hard and not any(c.is_fg for c in hard)  # only definite background exists
    soft_fg = 0
    for _ in range(200):
        for c in sample_clicks(rng, target, max_clicks=50, soft=True):
            v = target[int(c.y), int(c.x)]
            assert (v > 0.5) if c.is_fg else (v <= 0.5)
            soft_fg += c.is_fg
    assert soft_fg > 100


def test_sampler_soft_click_share(bank):
    sampler = CompositeSampler(bank, [], size=48, p_prev=0.0, p_soft_clicks=1.0)
    rng = np.random.default_rng(0)
    n = 0
    for _ in range(40):
        s = sampler.sample(rng)
        for c in s.clicks:
            v = s.alpha[int(c.y), int(c.x)]
            assert (v > 0.5) if c.is_fg else (v <= 0.5)
            n += 1
    assert n >= 40


def test_synth_shape_is_one_solid_blob_away_from_nothing():
    for seed in range(10):
        m = synth_shape(np.random.default_rng(seed), 96)
        assert set(np.unique(m)) <= {0.0, 1.0}
        assert 0.03 < m.mean() < 0.9  # an object, not empty, not the whole canvas


def test_strands_add_partial_alpha_outside_the_blob_only():
    a = np.zeros((80, 80), np.float32)
    a[25:55, 25:55] = 1
    out = add_strands(np.random.default_rng(0), a, 60)
    assert (out >= a).all() and out.max() <= 1
    grown = (out > 0.02) & (a == 0)
    assert grown.sum() > 50  # hair-like curves outside the blob
    assert ((out > 0.02) & (out < 0.98)).sum() > 50  # ... with partial alpha


def test_synthetic_objects_composite_consistently(bank):
    textures = [synth_background(np.random.default_rng(i), 64) for i in range(2)]
    f, a = synth_object(np.random.default_rng(1), textures, 64)
    assert f.shape == (64, 64, 3) and a.shape == (64, 64) and 0 <= f.min() and f.max() <= 1
    assert (a > 0.95).mean() > 0.03 and (a < 0.05).mean() > 0.05  # solid inside, clear outside
    sampler = CompositeSampler(bank, textures, size=64, p_original=0.0, p_multi=0.0, p_prev=0.0,
                               p_synth_bg=1.0, p_synth_obj=1.0)
    rng = np.random.default_rng(2)
    for _ in range(5):
        smp = sampler.sample(rng)
        assert smp.image.shape == (64, 64, 3) and smp.alpha.shape == (64, 64)
        assert smp.clicks and smp.clicks[0].is_fg
        c = smp.clicks[0]
        assert smp.alpha[int(c.y), int(c.x)] > 0.95


def test_see_through_patterns_are_partly_transparent():
    meshes = 0
    for seed in range(12):
        p = see_through(np.random.default_rng(seed), 96)
        assert p.shape == (96, 96) and p.dtype == np.float32 and 0 <= p.min() and p.max() <= 1
        assert (p < 0.9).mean() > 0.03, seed  # nets and veils are see-through somewhere
        # a mesh: threads (high) next to holes (low) within a few pixels
        if np.abs(np.diff(p, axis=1)).max() > 0.3:
            meshes += 1
    assert 2 <= meshes <= 11  # both kinds are drawn


def test_see_through_objects_keep_the_outside_clear():
    textures = [synth_background(np.random.default_rng(i), 64) for i in range(2)]
    for seed in range(6):
        solid = synth_object(np.random.default_rng(seed), textures, 64)[1]
        f, a = synth_object(np.random.default_rng(seed), textures, 64, p_see_through=1.0)
        assert (a <= solid + 1e-6).all()  # the pattern only removes opacity from the object
        inside = solid > 0.95
        assert (a[inside] < 0.9).mean() > 0.05  # ... and it does somewhere inside it


def test_part_masks_cut_the_canvas_into_regions():
    for n in (1, 2, 3):
        m = part_masks(np.random.default_rng(n), 64, n)
        assert m.shape == (n, 64, 64) and m.dtype == np.float32 and m.min() >= 0
        np.testing.assert_allclose(m.sum(0), 1.0, atol=1e-5)
        owner = m.argmax(0)
        assert len(np.unique(owner)) == n  # every part owns pixels ...
        assert (m.max(0) > 0.99).mean() > 0.8  # ... and pixels belong to one part, except at the seams
    with pytest.raises(ValueError):
        part_masks(np.random.default_rng(0), 64, 0)


def test_multi_part_objects_differ_inside_but_keep_their_alpha():
    # plain textures of different colours: parts must show up as different colours inside one object
    textures = [np.full((64, 64, 3), v, np.uint8) for v in ((220, 40, 40), (40, 200, 60), (30, 60, 220))]
    spread_plain, spread_parts = [], []
    for seed in range(8):
        f0, a0 = synth_object(np.random.default_rng(seed), textures, 64)
        f1, a1 = synth_object(np.random.default_rng(seed), textures, 64, p_parts=1.0)
        np.testing.assert_array_equal(a0, a1)  # the same shape: only the look changes, the target is whole
        inside = a1 > 0.95
        spread_plain.append(f0[inside].std(0).mean())
        spread_parts.append(f1[inside].std(0).mean())
        assert f1.shape == (64, 64, 3) and 0 <= f1.min() and f1.max() <= 1
    assert np.mean(spread_parts) > np.mean(spread_plain) + 0.05
    # off (the default) draws nothing extra: earlier configurations give the same objects
    f, a = synth_object(np.random.default_rng(5), textures, 64, p_parts=0.0)
    g, b = synth_object(np.random.default_rng(5), textures, 64)
    np.testing.assert_array_equal(f, g)


def _lab_mean(rgb: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    import cv2

    lab = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2LAB).reshape(-1, 3)
    if w is None:
        return lab.mean(0)
    w = w.reshape(-1, 1)
    return (lab * w).sum(0) / w.sum()


def test_camouflage_gives_the_background_the_foregrounds_colours():
    rng = np.random.default_rng(0)
    bg = synth_background(rng, 64).astype(np.float32) / 255.0
    fg = np.zeros((64, 64, 3), np.float32)
    fg[...] = (0.9, 0.5, 0.1)  # orange ...
    fg += rng.normal(0, 0.05, fg.shape).astype(np.float32)  # ... with some texture
    fg = np.clip(fg, 0, 1)
    alpha = np.zeros((64, 64), np.float32)
    alpha[16:48, 16:48] = 1.0
    out = camouflage(bg, fg, alpha, 1.0)
    assert out.shape == bg.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    target = _lab_mean(fg, alpha)
    before = np.abs(_lab_mean(bg) - target).max()
    after = np.abs(_lab_mean(out) - target).max()
    assert before > 15 and after < 4  # far apart before, the fruit's colours after
    # the background keeps its layout: recoloured, not replaced by a flat fill
    assert np.corrcoef(bg.mean(2).ravel(), out.mean(2).ravel())[0, 1] > 0.5
    half = camouflage(bg, fg, alpha, 0.5)
    np.testing.assert_allclose(half, 0.5 * bg + 0.5 * out, atol=1e-5)
    np.testing.assert_allclose(camouflage(bg, fg, alpha, 0.0), bg)
    np.testing.assert_allclose(camouflage(bg, fg, np.zeros_like(alpha), 1.0), bg)  # no foreground: unchanged


def test_camouflage_rejects_bad_input():
    bg = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(ValueError):
        camouflage(bg, np.zeros((8, 9, 3), np.float32), np.ones((8, 8), np.float32))
    with pytest.raises(ValueError):
        camouflage(bg, bg, np.ones((8, 8), np.float32), 1.5)
    with pytest.raises(ValueError):
        camouflage(bg[..., 0], bg[..., 0], np.ones((8, 8), np.float32))


def test_sampler_camouflage_recolours_the_background_only(bank):
    bgs = [synth_background(np.random.default_rng(i), 48) for i in range(3)]
    kw = dict(size=48, p_original=0.0, p_multi=0.0, p_prev=0.0, p_synth_bg=0.0)
    plain = CompositeSampler(bank, bgs, **kw)
    camo = CompositeSampler(bank, bgs, p_camouflage=1.0, **kw)
    gaps_plain, gaps_camo = [], []
    for seed in range(6):
        a = plain.sample(np.random.default_rng(seed))
        b = camo.sample(np.random.default_rng(seed))
        np.testing.assert_array_equal(a.alpha, b.alpha)  # same object, same place, same target
        solid, clear = a.alpha > 0.99, a.alpha < 0.01
        if solid.sum() < 20 or clear.sum() < 20:
            continue
        for smp, gaps in ((a, gaps_plain), (b, gaps_camo)):
            img = smp.image.astype(np.float32)
            gaps.append(np.abs(img[solid].mean(0) - img[clear].mean(0)).sum())
    assert len(gaps_camo) >= 3
    assert np.mean(gaps_camo) < 0.5 * np.mean(gaps_plain)  # object and background now look alike


def test_sampler_zoom_magnifies_the_object_beyond_the_frame(bank):
    bgs = [synth_background(np.random.default_rng(i), 48) for i in range(3)]
    kw = dict(size=48, p_multi=0.0, p_prev=0.0, p_synth_bg=0.0)
    solid = {}
    for p_zoom in (0.0, 1.0):
        sampler = CompositeSampler(bank, bgs, p_zoom=p_zoom, **kw)
        rng = np.random.default_rng(3)
        draws = [sampler.sample(rng) for _ in range(30)]
        for smp in draws:
            assert smp.image.shape == (48, 48, 3) and smp.alpha.shape == (48, 48)
            assert smp.clicks and 0 <= smp.alpha.min() and smp.alpha.max() <= 1
        solid[p_zoom] = np.mean([(smp.alpha > 0.95).mean() for smp in draws])
    # the crops hold a disc 0.6 of their width across (28 % of the frame); magnified 1.6-2.6x it covers most of it
    assert solid[0.0] < 0.45 and solid[1.0] > 1.5 * solid[0.0]
