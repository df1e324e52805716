import numpy as np
import pytest
import torch

from clickmatte.model.inference.config import PredictorConfig
from clickmatte.model.inference.predictor import Predictor, resolve_device


@pytest.fixture()
def predictor(small_model):
    return Predictor(small_model, device="cpu", working_size=96)


def img(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("h,w", [(32, 32), (33, 500), (700, 41), (257, 129), (40, 8000)])
def test_full_size_outputs_any_aspect(predictor, h, w):
    predictor.set_image(img(h, w))
    a, s = predictor.predict([(w // 2, h // 2, "fg"), (0, 0, "bg")])
    assert a.shape == (h, w) and s.shape == (h, w)
    assert a.dtype == np.float32 and s.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1 and s.min() > 0
    wh, ww = predictor._work_rgb.shape[-2:]
    assert max(wh, ww) <= 96


def test_rgba_input_and_prev_alpha(predictor):
    """The image's alpha channel is ignored; the previous alpha changes the answer, uint8 read as /255."""
    rgb = img(64, 80)
    predictor.set_image(rgb)
    plain, _ = predictor.predict([(10, 10, "fg")])
    predictor.set_image(np.dstack([rgb, np.full((64, 80), 7, np.uint8)]))
    np.testing.assert_array_equal(predictor.predict([(10, 10, "fg")])[0], plain)
    zeros, _ = predictor.predict([(10, 10, "fg")], prev_alpha=np.zeros((64, 80), np.uint8))
    ones, _ = predictor.predict([(10, 10, "fg")], prev_alpha=np.ones((64, 80), np.float32))
    ones_u8, _ = predictor.predict([(10, 10, "fg")], prev_alpha=np.full((64, 80), 255, np.uint8))
    assert np.abs(ones - zeros).max() > 1e-3  # the net sees the previous alpha
    np.testing.assert_array_equal(ones_u8, ones)


def test_bad_images_raise(predictor):
    for bad in [np.zeros((64, 64, 3), np.float32), np.zeros((64, 64), np.uint8), np.zeros((64, 64, 2), np.uint8),
                np.zeros((31, 64, 3), np.uint8), np.zeros((64, 8001, 3), np.uint8), [[1, 2, 3]]]:
        with pytest.raises(ValueError):
            predictor.set_image(bad)


def test_bad_clicks_and_state_raise(predictor):
    with pytest.raises(ValueError, match="set_image"):
        predictor.predict([(1, 1, "fg")])
    with pytest.raises(ValueError, match="predict"):
        Predictor(predictor.model, device="cpu").refine()
    predictor.set_image(img(40, 50))
    with pytest.raises(ValueError, match="outside"):
        predictor.predict([(50, 10, "fg")])
    with pytest.raises(ValueError):
        predictor.predict([(5, 5, "up")])
    with pytest.raises(ValueError):
        predictor.predict([(5, 5, "fg")], prev_alpha=np.zeros((10, 10), np.float32))
    predictor.predict([(5, 5, "fg")])
    with pytest.raises(ValueError):
        predictor.refine(top_n=-1)
    with pytest.raises(ValueError, match="top_n"):
        predictor.refine()  # an automatic refinement is told how many patches
    with pytest.raises(ValueError):
        predictor.refine(mask=np.ones((3, 3), bool))


def test_refine_changes_only_selected_patches(small_model):
    # a refiner with a non-zero head so refinement visibly changes alpha
    torch.manual_seed(3)
    torch.nn.init.normal_(small_model.refiner.head.weight, std=0.5)
    try:
        p = Predictor(small_model, device="cpu", working_size=64)
        p.set_image(img(200, 180, seed=4))
        a0, _ = p.predict([(90, 100, "fg")])
        a0 = a0.copy()
        a1 = p.refine(top_n=2)
        assert len(p.last_patches) == 2
        changed = a1 != a0
        inside = np.zeros_like(changed)
        for x, y, w, h in p.last_patches:
            inside[y : y + h, x : x + w] = True
        assert changed.any() and not (changed & ~inside).any()
        # refine inside a selection mask: nothing outside the mask changes
        p.predict([(90, 100, "fg")])
        before = p.alpha.copy()
        mask = np.zeros((200, 180), bool)
        mask[20:70, 30:100] = True
        a2 = p.refine(top_n=None, mask=mask)
        assert (a2[~mask] == before[~mask]).all() and (a2[mask] != before[mask]).any()
    finally:
        torch.nn.init.zeros_(small_model.refiner.head.weight)


def test_auto_refine_at_full_resolution_skips_mostly_soft_patches(small_model):
    """Coarse pass at the image's own size: auto refinement picks only windows <= refine_max_soft soft;
    with the coarse pass upsampled, or for a region the user chose, there is no such limit."""
    alpha = np.zeros((128, 192), np.float32)
    alpha[:64, :64] = 0.4  # the most uncertain block is all soft
    alpha[64:, 160:] = 1.0  # the second holds a hard edge
    sigma = np.full((128, 192), 0.01, np.float32)
    sigma[:64, :64] = 1.0
    sigma[64:, 128:] = 0.5
    image = img(128, 192, seed=5)
    native = Predictor(small_model, device="cpu", working_size=192)
    native.set_image(image)
    assert native.image_max_soft == pytest.approx(PredictorConfig().refine_max_soft)
    native.set_image_state(native.image_state(), alpha, sigma)
    native.refine(top_n=1)
    assert native.last_patches == [(128, 64, 64, 64)]
    native.set_image_state(native.image_state(), alpha, sigma)
    native.refine(top_n=1, regions=[(0, 0, 64, 64)])  # the user's own choice is refined
    assert native.last_patches == [(0, 0, 64, 64)]
    off = Predictor(small_model, device="cpu", working_size=192, refine_max_soft=1.0)
    off.set_image(image)
    assert off.image_max_soft is None
    off.set_image_state(off.image_state(), alpha, sigma)
    off.refine(top_n=1)
    assert off.last_patches == [(0, 0, 64, 64)]
    scaled = Predictor(small_model, device="cpu", working_size=96)  # coarse pass at half size
    scaled.set_image(image)
    assert scaled.image_max_soft is None
    scaled.set_image_state(scaled.image_state(), alpha, sigma)
    scaled.refine(top_n=1)
    assert scaled.last_patches == [(0, 0, 64, 64)]
    with pytest.raises(ValueError, match="refine_max_soft"):
        Predictor(small_model, device="cpu", refine_max_soft=-0.1)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")


def test_image_state_switches_back_without_recomputing(predictor):
    predictor.set_image(img(60, 70, seed=1))
    a1, _ = predictor.predict([(30, 30, "fg")])
    state = predictor.image_state()
    predictor.set_image(img(50, 40, seed=2))
    predictor.predict([(5, 5, "fg")])
    predictor.set_image_state(state, a1, np.full((60, 70), 0.1, np.float32))
    assert predictor.image_size == (60, 70)
    np.testing.assert_array_equal(predictor.predict([(30, 30, "fg")])[0], a1)
    predictor.set_image_state(state, a1, np.full((60, 70), 0.1, np.float32))
    refined = predictor.refine(top_n=1)  # works on the restored alpha: changes at most its one patch
    (x, y, w, h), = predictor.last_patches or [(0, 0, 0, 0)]
    outside = np.ones((60, 70), bool)
    outside[y:y + h, x:x + w] = False
    np.testing.assert_array_equal(refined[outside], a1[outside])


def test_flip_tta_averages_the_mirrored_prediction(small_model):
    """flip_tta: alpha = mean of the plain answer and the mirrored image's answer, mirrored back;
    sigma = the plain view's (the mirrored pass runs no uncertainty decoder)."""
    image = img(64, 96, seed=3)
    clicks = [(20, 30, "fg"), (80, 10, "bg")]
    mirrored_clicks = [(95 - x, y, lab) for x, y, lab in clicks]
    prev = np.random.default_rng(1).random((64, 96)).astype(np.float32)
    plain = Predictor(small_model, device="cpu", working_size=96, flip_tta=False)
    plain.set_image(image)
    a1, s1 = plain.predict(clicks, prev_alpha=prev)
    plain.set_image(np.ascontiguousarray(image[:, ::-1]))
    a2, s2 = plain.predict(mirrored_clicks, prev_alpha=np.ascontiguousarray(prev[:, ::-1]))
    tta = Predictor(small_model, device="cpu", working_size=96, flip_tta=True)
    tta.set_image(image)
    a, s = tta.predict(clicks, prev_alpha=prev)
    assert not np.allclose(a1, a2[:, ::-1], atol=1e-3)  # the net alone is not mirror-symmetric
    np.testing.assert_allclose(a, (a1 + a2[:, ::-1]) / 2, atol=1e-4)
    np.testing.assert_allclose(s, s1, atol=1e-5)
    # ... so with TTA, mirroring the input mirrors the answer
    tta.set_image(np.ascontiguousarray(image[:, ::-1]))
    am, _ = tta.predict(mirrored_clicks, prev_alpha=np.ascontiguousarray(prev[:, ::-1]))
    np.testing.assert_allclose(am[:, ::-1], a, atol=1e-4)


def test_prior_pass_feeds_the_nets_own_first_answer_back(small_model):
    """prior_pass: without a previous alpha, predict = the net given its own plain first answer;
    with a previous alpha nothing extra runs."""
    image = img(64, 96, seed=7)
    clicks = [(40, 30, "fg"), (90, 5, "bg")]
    with_prior = Predictor(small_model, device="cpu", working_size=96, flip_tta=False, prior_pass=True)
    without = Predictor(small_model, device="cpu", working_size=96, flip_tta=False, prior_pass=False)
    with_prior.set_image(image)
    without.set_image(image)
    a, s = with_prior.predict(clicks)
    first, _ = without.predict(clicks)
    a2, s2 = without.predict(clicks, prev_alpha=first)
    np.testing.assert_allclose(a, a2, atol=1e-5)
    np.testing.assert_allclose(s, s2, atol=1e-5)
    assert not np.allclose(a, first, atol=1e-4)  # the second pass did change the answer
    prev = np.random.default_rng(2).random((64, 96)).astype(np.float32)
    np.testing.assert_allclose(with_prior.predict(clicks, prev_alpha=prev)[0],
                               without.predict(clicks, prev_alpha=prev)[0], atol=1e-6)
    # with flip_tta the first answer is the mirrored image's (mirrored back), then one plain pass
    tta_prior = Predictor(small_model, device="cpu", working_size=96, flip_tta=True, prior_pass=True)
    tta_prior.set_image(image)
    without.set_image(np.ascontiguousarray(image[:, ::-1]))
    mirrored, _ = without.predict([(95 - x, y, lab) for x, y, lab in clicks])
    without.set_image(image)
    expected, _ = without.predict(clicks, prev_alpha=np.ascontiguousarray(mirrored[:, ::-1]))
    np.testing.assert_allclose(tta_prior.predict(clicks)[0], expected, atol=1e-5)


def test_guided_upsampling_of_images_above_the_working_size(small_model):
    """guided: the working-size alpha goes through guided_upsample with the full image as guide; without it,
    a bilinear resize; images within the working size are not resampled at all."""
    import cv2

    from clickmatte.model.inference.guided_upsample import guided_upsample

    image = img(150, 240, seed=5)
    clicks = [(60, 70, "fg"), (230, 5, "bg")]
    guided = Predictor(small_model, device="cpu", working_size=96, flip_tta=False, guide_radius=2, guide_eps=1e-4)
    plain = Predictor(small_model, device="cpu", working_size=96, flip_tta=False, guided=False)
    native = Predictor(small_model, device="cpu", working_size=1000, flip_tta=False)
    small = cv2.resize(image, (96, 60), interpolation=cv2.INTER_AREA)
    native.set_image(small)
    low, low_sigma = native.predict([((x + 0.5) * 0.4 - 0.5, (y + 0.5) * 0.4 - 0.5, lab) for x, y, lab in clicks])
    guided.set_image(image)
    plain.set_image(image)
    a_g, s_g = guided.predict(clicks)
    a_p, s_p = plain.predict(clicks)
    np.testing.assert_allclose(a_g, guided_upsample(low, small, image, radius=2, eps=1e-4), atol=1e-4)
    np.testing.assert_allclose(a_p, np.clip(cv2.resize(low, (240, 150), interpolation=cv2.INTER_LINEAR), 0, 1),
                               atol=1e-4)
    assert np.abs(a_g - a_p).max() > 5e-3  # the two upsamplings differ ...
    np.testing.assert_allclose(s_g, s_p, atol=1e-6)  # ... the uncertainty is bilinear in both
    native.set_image(small)  # within the working size: guided or not, the same
    off = Predictor(small_model, device="cpu", working_size=1000, flip_tta=False, guided=False)
    off.set_image(small)
    np.testing.assert_array_equal(native.predict([(20, 20, "fg")])[0], off.predict([(20, 20, "fg")])[0])
    with pytest.raises(ValueError, match="guide_radius"):
        Predictor(small_model, device="cpu", guide_radius=0)


def test_context_pass_feeds_a_coarser_answer_to_the_working_pass(small_model):
    """context_size: the net first answers at a smaller size; that answer, upsampled, is the previous alpha
    of the working-size pass (whose own prior pass is then not needed)."""
    image = img(96, 128, seed=9)
    clicks = [(50, 60, "fg"), (120, 5, "bg")]
    kw = dict(device="cpu", flip_tta=False, prior_pass=False, guided=False)
    ctx = Predictor(small_model, working_size=128, context_size=64, **kw)
    plain = Predictor(small_model, working_size=128, context_size=0, **kw)
    coarse = Predictor(small_model, working_size=64, context_size=0, **kw)  # the same look at half size
    for p in (ctx, plain, coarse):
        p.set_image(image)
    prev = np.random.default_rng(4).random((96, 128)).astype(np.float32)
    for given in (None, prev):
        first, _ = coarse.predict(clicks, prev_alpha=given)
        expected, expected_sigma = plain.predict(clicks, prev_alpha=first)
        a, s = ctx.predict(clicks, prev_alpha=given)
        np.testing.assert_allclose(a, expected, atol=2e-3)
        np.testing.assert_allclose(s, expected_sigma, atol=2e-3)
        assert np.abs(a - plain.predict(clicks, prev_alpha=given)[0]).max() > 1e-2  # it does change the answer
    # the context copy follows the image, also through image_state / set_image_state
    state = ctx.image_state()
    ctx.set_image(img(80, 60, seed=1))
    ctx.predict([(10, 10, "fg")])
    ctx.set_image_state(state)
    np.testing.assert_allclose(ctx.predict(clicks, prev_alpha=prev)[0], a, atol=1e-6)


def test_context_pass_skips_images_within_the_context_size(small_model):
    image = img(60, 64, seed=2)
    clicks = [(30, 30, "fg")]
    on = Predictor(small_model, device="cpu", working_size=128, context_size=64)
    off = Predictor(small_model, device="cpu", working_size=128, context_size=0)
    on.set_image(image)
    off.set_image(image)
    np.testing.assert_array_equal(on.predict(clicks)[0], off.predict(clicks)[0])
    with pytest.raises(ValueError, match="context_size"):
        Predictor(small_model, device="cpu", context_size=16)


def test_shrink_area_is_a_box_filter_like_a_direct_area_resize():
    import cv2

    from clickmatte.model.inference.predictor import shrink_area

    yy, xx = np.mgrid[0:1300, 0:1710]
    disc = np.rint(255.0 * np.clip(400.0 - np.hypot(yy - 640.0, xx - 900.0), 0.0, 1.0)).astype(np.uint8)
    direct = cv2.resize(disc.astype(np.float32), (512, 389), interpolation=cv2.INTER_AREA)
    fast = shrink_area(disc, 512, 389)
    assert fast.shape == (389, 512) and fast.dtype == np.float32
    assert np.abs(fast - direct).mean() < 0.5  # an antialiased edge lands where a direct area resize puts it
    strands = np.where((np.sin(xx / 1.3) > 0.7) & (yy > 900), 255, 0).astype(np.uint8)  # 1-2 px hair
    box = shrink_area(strands, 512, 389)[300:, :].mean()  # the rows wholly below y = 900 (in work px: 270)
    sampled = cv2.resize(strands, (512, 389), interpolation=cv2.INTER_NEAREST)[300:, :].astype(np.float32).mean()
    truth = strands[1003:, :].astype(np.float32).mean()
    assert abs(box - truth) < 0.01 * truth and abs(sampled - truth) > 3 * abs(box - truth)  # coverage kept
    np.testing.assert_allclose(shrink_area(np.full((1300, 1710), 77, np.uint8), 512, 389), 77.0, rtol=1e-6)
    small = shrink_area(disc, 1000, 1000)  # factor < 2: one direct area resize
    assert np.array_equal(small, cv2.resize(disc.astype(np.float32), (1000, 1000), interpolation=cv2.INTER_AREA))
