"""Mask mode of clickmatte-eval (interactive segmentation), the binary-mask metrics and the local-error report."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import pytest
import torch

from clickmatte.model.evaluation.click_simulator import next_click
from clickmatte.model.evaluation.eval_report import summarize_local
from clickmatte.model.evaluation.eval_loop import evaluate_image
from clickmatte.model.evaluate import main
from clickmatte.model.image_io import alpha_to_u8
from clickmatte.model.evaluation.mask_eval import (evaluate_mask_image, image_rng, noc_at, refine_ablation,
                                                   summarize_mask_engine)
from clickmatte.model.evaluation.metrics import disk_mask, iou, local_change, local_mae
from clickmatte.model.network.registry import DEFAULT_CHECKPOINT

ECSSD = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "real_objects" / "ecssd_val"
ECSSD_NAMES = ("0001", "0007", "0009")
SMALL = 96  # long side of the downscaled photos: keeps the real network fast on a CPU

needs_real = pytest.mark.skipif(not (ECSSD / "image").is_dir() or not DEFAULT_CHECKPOINT.is_file(),
                                reason="needs ../shared/data/real_objects/ecssd_val and the shipped weights")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread for these tiny images: on a busy 2-core machine two threads spin against each other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- metrics on hand-made arrays ------------------------------------------------------------------
def test_iou_known_answers() -> None:
    gt = np.zeros((10, 10), np.uint8)
    gt[0:4, 0:5] = 255  # 20 px
    pred = np.zeros((10, 10), np.float32)
    pred[2:6, 0:5] = 0.9  # 20 px, 10 of them shared
    assert iou(pred, gt) == pytest.approx(10 / 30)
    assert iou(gt, gt) == 1.0
    assert iou(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0  # two empty masks agree
    assert iou(np.zeros((4, 4)), np.ones((4, 4))) == 0.0
    half = np.full((4, 4), 0.5, np.float32)  # exactly 0.5 is background, as in the simulator
    assert iou(half, np.ones((4, 4))) == 0.0
    assert iou(np.full((4, 4), 128, np.uint8), np.ones((4, 4))) == 1.0  # 128/255 > 0.5
    with pytest.raises(ValueError):
        iou(np.zeros((4, 4)), np.zeros((4, 5)))


def test_noc_counts_the_first_click_that_reaches_the_threshold() -> None:
    ious = [0.40, 0.86, 0.84, 0.91, 0.95]
    assert noc_at(ious, 0.85, 20) == (2, True)
    assert noc_at(ious, 0.90, 20) == (4, True)
    assert noc_at(ious, 0.99, 20) == (20, False)  # never: the cap
    assert noc_at(ious, 0.90, 3) == (3, False)  # reached only after the cap
    assert noc_at([0.9], 0.90, 20) == (1, True)  # >=, not >
    with pytest.raises(ValueError):
        noc_at(ious, 0.9, 0)


def test_local_mae_is_the_mean_inside_the_disk() -> None:
    gt = np.zeros((5, 5), np.float32)
    pred = gt.copy()
    pred[2, 2] = 1.0
    pred[0, 0] = 1.0  # outside the radius-1 disk around (2, 2)
    assert disk_mask(5, 5, 2, 2, 1).sum() == 5
    assert local_mae(pred, gt, 2, 2, radius=1) == pytest.approx(1 / 5)
    # clipped at the border: around (0, 0) radius 1 covers 3 pixels, one of them wrong
    assert local_mae(pred, gt, 0, 0, radius=1) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        local_mae(pred, gt, 5, 0)


def test_local_change_before_after_and_still_wrong() -> None:
    gt = np.zeros((40, 40), np.uint8)
    gt[10:30, 10:30] = 255
    before = np.zeros((40, 40), np.float32)
    after = gt.astype(np.float32) / 255.0
    r = local_change({"x": 20, "y": 20, "label": "fg"}, before, after, gt, radius=5)
    assert r["before"] == pytest.approx(1.0) and r["after"] == 0.0 and not r["still_wrong"]
    r = local_change({"x": 20, "y": 20, "label": "fg"}, after, before, gt, radius=5)  # the click undid it
    assert r["after"] == pytest.approx(1.0) and r["still_wrong"]
    r = local_change({"x": 2, "y": 2, "label": "bg"}, before, before, gt, radius=5)
    assert r["before"] == r["after"] == 0.0 and not r["still_wrong"]
    summary = summarize_local({"a": {"local": [{"k": 2, **local_change({"x": 20, "y": 20, "label": "fg"}, after,
                                                                      before, gt, radius=5)},
                                               {"k": 3, **r}]}})
    assert summary is not None
    assert summary["n_clicks"] == 2 and summary["worse_share"] == 0.5 and summary["still_wrong_share"] == 0.5
    assert summary["by_label"]["fg"]["n_clicks"] == 1 and summary["by_label"]["bg"]["worse_share"] == 0.0
    with pytest.raises(ValueError):
        local_change({"x": 1, "y": 1, "label": "maybe"}, before, after, gt)


# -- the simulator on masks -----------------------------------------------------------------------
def test_simulator_on_an_anti_aliased_uint8_mask() -> None:
    mask = np.zeros((50, 60), np.uint8)
    mask[10:31, 20:41] = 255  # 21x21 square centred at (30, 20)
    mask[8, 20:41] = 200
    mask[9, 20:41] = 128  # anti-aliased rows above it: > 0.5, so foreground
    mask[31, 20:41] = 127  # below it: <= 0.5, so background
    first = next_click(mask)
    # the middle of rows 8..30 (with 128 as background it would be 20; with 127 as foreground 19.5)
    assert first == {"x": 30, "y": 19, "label": "fg"}
    pred = np.zeros((50, 60), np.float32)
    pred[10:31, 20:41] = 1.0
    pred[35:48, 2:20] = 1.0  # a 13x18 false positive, 7 px deep; the missed rows 8-9 are 1 px deep
    c = next_click(mask, pred, [first])
    assert c is not None and c["label"] == "bg" and 35 <= c["y"] < 48 and 2 <= c["x"] < 20
    assert c == {"x": 10, "y": 41, "label": "bg"}  # its middle
    pred[35:48, 2:20] = 0.0  # now only row 9 is wrong
    c = next_click(mask, pred, [first])
    assert c is not None and c["label"] == "fg" and c["y"] in (8, 9) and 20 <= c["x"] <= 40


@needs_real
def test_first_click_is_the_deepest_point_of_a_real_mask() -> None:
    """Against an independent computation as RITM does it (cv2's distance transform on the padded mask)."""
    for name in ECSSD_NAMES:
        mask = cv2.imread(str(ECSSD / "mask" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        c = next_click(mask)
        assert c is not None and c["label"] == "fg"
        padded = np.pad((mask > 127).astype(np.uint8), 1)
        dt = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        assert dt[c["y"], c["x"]] == pytest.approx(dt.max(), abs=1e-3)


# -- the per-image loop with a stand-in engine (known IoU per click) ------------------------------
class _Scripted:
    """Predicts the top ``rows[n]`` of 20 rows of a square object after n clicks (IoU = rows / 20)."""

    def __init__(self, rows: Sequence[int], extra: int = 0) -> None:
        self.rows, self.extra = list(rows), extra
        self.seen_prev: list[Optional[np.ndarray]] = []

    def set_image(self, image: np.ndarray) -> None:
        self.shape = image.shape[:2]

    def predict(self, clicks: Sequence[dict], prev_alpha: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        self.seen_prev.append(prev_alpha)
        n = self.rows[min(len(clicks), len(self.rows)) - 1]
        a = np.zeros(self.shape, np.float32)
        a[10:10 + n, 10:30] = 0.8
        return a, np.full(self.shape, 0.1, np.float32)


def _square() -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 10:30] = 255
    return np.zeros((40, 40, 3), np.uint8), mask


def test_mask_loop_stops_only_after_k5_and_keeps_noc_exact() -> None:
    rgb, mask = _square()
    # IoU 0.5, 0.95 (>= 0.90 at k = 2), ... : must keep clicking up to k = 5, then stop
    eng = _Scripted([10, 19, 19, 19, 19, 19, 19])
    rec, _ = evaluate_mask_image(eng, rgb, mask, max_clicks=20)
    assert rec["simulated"] == 5 and rec["stop"] == "iou"
    assert [r["carried"] for r in rec["per_click"]] == [False] * 5 + [True] * 15
    assert rec["per_click"][0]["iou"] == pytest.approx(0.5) and rec["per_click"][19]["iou"] == pytest.approx(0.95)
    assert rec["noc"] == {"85": 2, "90": 2} and rec["noc_reached"] == {"85": True, "90": True}
    # the previous alpha goes back as uint8, from the second click on
    assert eng.seen_prev[0] is None and all(p is not None and p.dtype == np.uint8 for p in eng.seen_prev[1:])
    assert int(eng.seen_prev[1][12, 15]) == 204  # 0.8 * 255 rounded
    # reaching 0.90 only at k = 7: simulated exactly to 7, NoC exact
    eng = _Scripted([4, 8, 12, 14, 16, 17, 18, 18])  # IoU .2 .4 .6 .7 .8 .85 .9
    rec, _ = evaluate_mask_image(eng, rgb, mask, max_clicks=20)
    assert rec["simulated"] == 7 and rec["noc"] == {"85": 6, "90": 7}
    # never: the cap, and not reached
    eng = _Scripted([4, 8, 12])
    rec, _ = evaluate_mask_image(eng, rgb, mask, max_clicks=8)
    assert rec["simulated"] == 8 and rec["stop"] == "cap" and len(rec["per_click"]) == 8
    assert rec["noc"] == {"85": 8, "90": 8} and rec["noc_reached"] == {"85": False, "90": False}
    # every click is a fg click into the rows still missed (nothing predicted where there is no object)
    rows = [4, 8, 12, 12, 12, 12, 12, 12]
    assert all(c["label"] == "fg" and c["y"] >= 10 + rows[k - 2] for k, c in enumerate(rec["clicks"][1:], start=2))
    inside = np.asarray(mask, np.float32) / (255.0 if mask.dtype == np.uint8 else 1.0) > 0.5
    assert all(bool(inside[int(c["y"]), int(c["x"])]) == (c["label"] == "fg") for c in rec["clicks"])
    # a perfect answer leaves nothing to click: carried from there, IoU 1
    eng = _Scripted([10, 20])
    rec, _ = evaluate_mask_image(eng, rgb, mask, max_clicks=6)
    assert rec["simulated"] == 2 and rec["stop"] == "no error" and rec["per_click"][5]["iou"] == 1.0
    summary = summarize_mask_engine({"a": rec}, 6)
    assert summary["iou_at"] == {"1": 0.5, "2": 1.0, "3": 1.0, "5": 1.0}
    assert summary["per_click"][2]["n_measured"] == 0 and summary["noc"]["90"]["never"] == 0
    with pytest.raises(ValueError):
        evaluate_mask_image(eng, rgb, mask[:30], max_clicks=6)


def test_local_error_in_alpha_mode_is_recorded_per_click() -> None:
    rgb, mask = _square()
    eng = _Scripted([4, 12, 20])
    rec, _ = evaluate_image(eng, rgb, mask, max_clicks=3, noc_cap=3)
    assert [r["k"] for r in rec["local"]] == [2, 3]
    second = rec["local"][0]
    c = rec["clicks"][1]
    assert (second["x"], second["y"], second["label"]) == (c["x"], c["y"], "fg")
    before = np.zeros((40, 40), np.float32)
    before[10:14, 10:30] = 0.8
    after = np.zeros((40, 40), np.float32)
    after[10:22, 10:30] = 0.8
    assert second["before"] == pytest.approx(local_mae(before, mask, c["x"], c["y"]))
    assert second["after"] == pytest.approx(local_mae(after, mask, c["x"], c["y"]))
    assert second["after"] < second["before"]


# -- end to end with the shipped weights on real photos --------------------------------------------
def _small_copies(dst: Path) -> None:
    for name in ECSSD_NAMES:
        img = cv2.imread(str(ECSSD / "image" / f"{name}.jpg"))
        mask = cv2.imread(str(ECSSD / "mask" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        s = SMALL / max(img.shape[:2])
        size = (round(img.shape[1] * s), round(img.shape[0] * s))
        (dst / "image").mkdir(parents=True, exist_ok=True)
        (dst / "mask").mkdir(exist_ok=True)
        cv2.imwrite(str(dst / "image" / f"{name}.png"), cv2.resize(img, size, interpolation=cv2.INTER_AREA))
        cv2.imwrite(str(dst / "mask" / f"{name}.png"), cv2.resize(mask, size, interpolation=cv2.INTER_AREA))


@needs_real
def test_mask_mode_end_to_end_with_the_shipped_weights(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from clickmatte.model.evaluation.eval_data import read_image
    from clickmatte.model.image_io import read_alpha
    from clickmatte.model.visualize import alpha_to_uint8
    from clickmatte.model.inference.predictor import Predictor

    data = tmp_path / "ecssd_small"
    _small_copies(data)
    out = tmp_path / "run1"
    args = ["--masks", str(data), "--max-clicks", "6", "--device", "cpu", "--quiet", "--worst", "1", "--threads", "1"]
    refine = ["--refine-top-n", "2", "--refine-random", "--refine-max-soft", "1", "--seed", "3"]
    assert main([*args, *refine, "--limit", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "NoC@90" in printed and "Do clicks fix what they point at?" in printed
    assert "Patch refinement after each click (none / top-2 by uncertainty / 2 random)" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "mask" and report["config"]["limit"] == 2
    assert report["config"]["refine_top_n"] == 2 and report["config"]["refine_random"] and report["config"]["seed"] == 3
    images = report["engines"]["net"]["images"]
    assert list(images) == ["0001.png", "0007.png"]  # the first two names in sorted order
    assert (out / "iou_vs_clicks.png").is_file() and (out / "worst.png").is_file()
    # the ablation after each click k <= 5, from that click's coarse prediction; none after it
    for rec in images.values():
        for row in rec["per_click"]:
            if row["k"] > 5:
                assert "refine" not in row
                continue
            for kind in ("top", "random"):
                r = row["refine"][kind]
                assert len(r["boxes"]) == len(row["refine"]["top"]["boxes"]) >= 1  # a 96-px photo fits one patch
                assert 0.0 <= r["iou"] <= 1.0 and 0.0 <= r["sad_definite"] <= r["sad"]
    at = report["engines"]["net"]["summary"]["refine"]["at"]
    assert list(at) == ["1", "2", "3", "4", "5"]
    assert at["5"]["coarse"]["iou"] == pytest.approx(np.mean([r["per_click"][4]["iou"] for r in images.values()]))
    assert at["5"]["top"]["sad_definite"] == pytest.approx(
        np.mean([r["per_click"][4]["refine"]["top"]["sad_definite"] for r in images.values()]))

    # replay one image with the product's predictor: the same clicks, fed back as the daemon does,
    # give the same IoU per click (the refinement above left the coarse click chain alone); every click
    # follows the protocol
    rec = images["0001.png"]
    rgb, mask = read_image(data / "image" / "0001.png"), alpha_to_uint8(read_alpha(data / "mask" / "0001.png"))
    p = Predictor(device="cpu")
    p.set_image(rgb)
    prev = None
    for k, c in enumerate(rec["clicks"], start=1):
        assert c == next_click(mask, prev, rec["clicks"][: k - 1])
        alpha, _ = p.predict(rec["clicks"][:k], prev_alpha=None if prev is None else alpha_to_u8(prev))
        assert iou(alpha, mask) == pytest.approx(rec["per_click"][k - 1]["iou"], abs=1e-6)
        prev = alpha
    assert rec["simulated"] == len(rec["clicks"])
    ious = [r["iou"] for r in rec["per_click"]]
    assert rec["noc"]["90"] == noc_at(ious, 0.9, 6)[0]
    assert len(rec["local"]) == rec["simulated"] - 1
    s = report["engines"]["net"]["summary"]
    assert s["iou_at"]["1"] > 0.3 and s["iou_at"]["5"] >= s["iou_at"]["1"]  # the shipped weights find the objects
    assert s["local"]["n_clicks"] == sum(len(r["local"]) for r in images.values())

    # side by side: a second run shows the first one's engine; a matting report is refused
    out2 = tmp_path / "run2"
    assert main([*args, "--limit", "2", "--no-flip-tta", "--out", str(out2), "--compare", str(out)]) == 0
    report2 = json.loads((out2 / "report.json").read_text())
    assert set(report2["engines"]) == {"net", "net (run1)"}
    assert "| net (run1) | 2 |" in (out2 / "summary.md").read_text()
    alpha_run = tmp_path / "alpha_run"
    alpha_run.mkdir()
    (alpha_run / "report.json").write_text(json.dumps({"config": {}, "engines": {}}))
    assert main([*args, "--out", str(tmp_path / "run3"), "--compare", str(alpha_run)]) == 2
    assert not (tmp_path / "run3").exists()


@needs_real
def test_refine_ablation_changes_only_its_patches_and_random_is_seeded() -> None:
    """A real photo at 200 px with the shipped weights: the top-N are the most uncertain windows, only their
    pixels change, the random patches are reproducible from the seed, differ from the top-N, and both start
    from (and leave the predictor with) the same coarse state."""
    from clickmatte.model.inference.predictor import Predictor
    from clickmatte.model.network.refiner import select_patches

    img = cv2.imread(str(ECSSD / "image" / "0007.jpg"))[:, :, ::-1]
    mask = cv2.imread(str(ECSSD / "mask" / "0007.png"), cv2.IMREAD_GRAYSCALE)
    s = 200 / max(img.shape[:2])
    size = (round(img.shape[1] * s), round(img.shape[0] * s))
    rgb = np.ascontiguousarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
    mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
    p = Predictor(device="cpu", refine_max_soft=1.0)  # no soft limit: a 200-px photo has room for 3 patches
    p.set_image(rgb)
    coarse, sigma = p.predict([next_click(mask)])
    coarse, sigma = coarse.copy(), sigma.copy()

    rec, alphas = refine_ablation(p, mask, 3, True, image_rng(5, "0007.png"))
    top = [tuple(b) for b in rec["top"]["boxes"]]
    assert top == select_patches(sigma, 3, 64)  # the most uncertain non-overlapping windows
    assert len(top) == 3 and len(rec["random"]["boxes"]) == 3
    for kind in ("top", "random"):
        inside = np.zeros(mask.shape, bool)
        for x, y, w, h in rec[kind]["boxes"]:
            assert w == h == 64 and 0 <= x <= mask.shape[1] - 64 and 0 <= y <= mask.shape[0] - 64
            inside[y:y + h, x:x + w] = True
        changed = alphas[kind] != coarse
        assert changed.any() and not (changed & ~inside).any()  # only pixels inside its patches change
        assert rec[kind]["iou"] == pytest.approx(iou(alphas[kind], mask))
    assert sorted(rec["random"]["boxes"]) != sorted(rec["top"]["boxes"])
    assert np.array_equal(p.alpha, coarse) and np.array_equal(p.uncertainty, sigma) and p.last_patches == []

    again, again_alphas = refine_ablation(p, mask, 3, True, image_rng(5, "0007.png"))  # same seed, same name
    assert again["random"]["boxes"] == rec["random"]["boxes"] and again["top"]["boxes"] == rec["top"]["boxes"]
    assert np.array_equal(again_alphas["random"], alphas["random"])
    others = [refine_ablation(p, mask, 3, True, image_rng(seed, "0007.png"))[0]["random"]["boxes"] for seed in (6, 7)]
    assert any(b != rec["random"]["boxes"] for b in others)
    only_top, only_top_alphas = refine_ablation(p, mask, 3, False, image_rng(5, "0007.png"))
    assert set(only_top) == {"top"} and np.array_equal(only_top_alphas["top"], alphas["top"])
    with pytest.raises(ValueError):
        refine_ablation(p, mask, 0, True, image_rng(5, "0007.png"))


def test_mask_loop_refines_only_the_net_engine() -> None:
    rgb, mask = _square()
    eng = _Scripted([10, 19, 19, 19, 19, 19])
    rec, _ = evaluate_mask_image(eng, rgb, mask, max_clicks=6, refine_top_n=8, refine_random=True)
    assert all("refine" not in r for r in rec["per_click"])  # a stand-in engine has no refiner
    assert summarize_mask_engine({"a": rec}, 6).get("refine") is None
    with pytest.raises(ValueError):
        evaluate_mask_image(eng, rgb, mask, max_clicks=6, refine_top_n=0, refine_random=True)
    with pytest.raises(ValueError):
        evaluate_mask_image(eng, rgb, mask, max_clicks=6, refine_top_n=-1)


def test_mask_mode_rejects_what_does_not_apply(tmp_path: Path) -> None:
    d = tmp_path / "d"
    with pytest.raises(SystemExit):
        main(["--masks", str(d), "--out", str(tmp_path / "o"), "--refine-random"])  # random needs --refine-top-n
    with pytest.raises(SystemExit):
        main(["--masks", str(d), "--out", str(tmp_path / "o"), "--refine-top-n", "-1"])
    with pytest.raises(SystemExit):
        main(["--masks", str(d), "--out", str(tmp_path / "o"), "--clicks", "c.json"])
    with pytest.raises(SystemExit):
        main(["--masks", str(d), "--data", str(d), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit):
        main(["--masks", str(d), "--out", str(tmp_path / "o"), "--threads", "0"])
    assert main(["--masks", str(d), "--out", str(tmp_path / "o"), "--quiet"]) == 2  # no image/ folder
    # the refinement flags are accepted (the run then fails on the missing folder, not on the flags)
    assert main(["--masks", str(d), "--out", str(tmp_path / "o"), "--quiet", "--refine-top-n", "8",
                 "--refine-random", "--seed", "1"]) == 2


def test_fixed_protocol_gives_the_same_clicks_whatever_the_answer() -> None:
    from clickmatte.model.evaluation.click_simulator import fixed_clicks

    rgb, mask = _square()
    good, _ = evaluate_mask_image(_Scripted([20] * 6), rgb, mask, max_clicks=5, protocol="fixed")
    bad, _ = evaluate_mask_image(_Scripted([2] * 6), rgb, mask, max_clicks=5, protocol="fixed")
    assert good["clicks"] == bad["clicks"] == fixed_clicks(mask, 5)
    assert [c["label"] for c in good["clicks"]] == ["fg", "bg", "fg", "bg", "fg"]
    # no early stop at IoU 1 and no "no error" stop: every image gets its five clicks
    assert good["simulated"] == bad["simulated"] == 5 and good["stop"] == "cap"
    summary = summarize_mask_engine({"good": good, "bad": bad}, 5)
    assert summary["worse_images"] == 0 and summary["worse_share"] == 0.0
    with pytest.raises(ValueError):
        evaluate_mask_image(_Scripted([20]), rgb, mask, max_clicks=5, protocol="random")


def test_worse_share_counts_images_whose_sad_rises_from_one_click_to_the_last() -> None:
    rgb, mask = _square()
    rising, _ = evaluate_mask_image(_Scripted([18, 14, 10]), rgb, mask, max_clicks=3, protocol="fixed")
    falling, _ = evaluate_mask_image(_Scripted([10, 14, 18]), rgb, mask, max_clicks=3, protocol="fixed")
    assert rising["per_click"][-1]["sad"] > rising["per_click"][0]["sad"]
    summary = summarize_mask_engine({"rising": rising, "falling": falling}, 3)
    assert summary["worse_images"] == 1 and summary["worse_share"] == 0.5


@needs_real
def test_fixed_protocol_end_to_end_with_the_shipped_weights(tmp_path: Path) -> None:
    from clickmatte.model.evaluation.click_simulator import fixed_clicks

    data = tmp_path / "ecssd_small"
    _small_copies(data)
    out = tmp_path / "fixed"
    assert main(["--masks", str(data), "--max-clicks", "3", "--device", "cpu", "--quiet", "--worst", "0",
                 "--threads", "1", "--limit", "2", "--protocol", "fixed", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["protocol"] == "fixed" and report["clicks_source"].startswith("fixed")
    for name, rec in report["engines"]["net"]["images"].items():
        mask = cv2.imread(str(data / "mask" / f"{Path(name).stem}.png"), cv2.IMREAD_GRAYSCALE)
        assert rec["clicks"] == fixed_clicks(mask, 3) and rec["simulated"] == 3
    assert "worse @3 than @1" in (out / "summary.md").read_text()
    with pytest.raises(SystemExit):  # matting mode has --clicks FILE for fixed clicks
        main(["--data", str(data), "--out", str(tmp_path / "m"), "--protocol", "fixed"])
