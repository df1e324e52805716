"""clickmatte-eval end to end on tiny images, for both engines (the net untrained unless weights ship)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from clickmatte.model.inference.config import PredictorConfig
from clickmatte.model.evaluation.eval_data import Pair, find_pairs, load_pair
from clickmatte.model.evaluation.eval_engines import NetEngine
from clickmatte.model.evaluation.eval_loop import evaluate_image
from clickmatte.model.evaluate import main
from clickmatte.model.image_io import read_alpha
from clickmatte.model.evaluation.refine_study import random_boxes
from clickmatte.model.visualize import alpha_to_uint8


def _scene(h: int, w: int, cx: float, cy: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = np.clip((min(h, w) * 0.3 - np.hypot(yy - cy, xx - cx)) / 2.0, 0.0, 1.0)
    fg = np.array([230.0, 70.0, 40.0])
    bg = np.array([30.0, 140.0, 190.0])
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg + rng.normal(0, 5, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), np.rint(alpha * 255).astype(np.uint8)


def _write(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), arr)


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    for i, name in enumerate(("a", "b", "c")):
        img, alpha = _scene(40, 48, 20 + 4 * i, 18 + 2 * i, i)
        _write(d / "image" / f"{name}.png", img)
        if name == "b":  # an RGB alpha with equal channels is accepted
            _write(d / "alpha" / f"{name}.png", np.repeat(alpha[..., None], 3, axis=2))
        else:
            _write(d / "alpha" / f"{name}.png", alpha)
    img, alpha = _scene(40, 48, 24, 20, 9)
    _write(d / "image" / "d_mismatch.png", img)
    _write(d / "alpha" / "d_mismatch.png", alpha[:30])
    _write(d / "image" / "e_colour.png", img)
    colour = np.stack([alpha, alpha, 255 - alpha], axis=2)
    _write(d / "alpha" / "e_colour.png", colour)
    _write(d / "image" / "f_noalpha.png", img)
    (d / "image" / "g_garbage.png").write_bytes(b"not a png at all")
    _write(d / "alpha" / "g_garbage.png", alpha)
    return d


def test_eval_cli_both_engines_end_to_end(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "report"
    rc = main(["--data", str(data_dir), "--engine", "net,classical", "--max-clicks", "2", "--out", str(out), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr()
    assert "| classical | 2 |" in printed.out and "skipped d_mismatch.png" in printed.err
    for f in ("report.json", "summary.md", "sad_vs_clicks.png", "worst.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0
    assert cv2.imread(str(out / "sad_vs_clicks.png")) is not None
    sheet = cv2.imread(str(out / "worst.png"))
    assert sheet is not None and sheet.shape[1] > 5 * 100
    report = json.loads((out / "report.json").read_text())
    skipped = {s["name"]: s["reason"] for s in report["skipped"]}
    assert set(skipped) == {"d_mismatch.png", "e_colour.png", "f_noalpha.png", "g_garbage.png"}
    assert "size mismatch" in skipped["d_mismatch.png"] and "unequal channels" in skipped["e_colour.png"]
    assert "missing alpha" in skipped["f_noalpha.png"] and "unreadable" in skipped["g_garbage.png"]
    assert report["failed"] == []
    for engine in ("net", "classical"):
        eng = report["engines"][engine]
        assert set(eng["images"]) == {"a.png", "b.png", "c.png"}
        for rec in eng["images"].values():
            assert [r["k"] for r in rec["per_click"]] == [1, 2]
            for r in rec["per_click"]:
                for m in ("sad", "mse", "grad", "conn"):
                    assert np.isfinite(r[m]) and r[m] >= 0
                assert r["carried"] or r["seconds"] > 0
            assert 1 <= rec["noc"] <= 10
            # NoC: the first k whose MSE <= 10e-3 (or the cap), from the MSE trace
            hits = [k for k, e in enumerate(rec["mse_trace"], 1) if e <= 0.01]
            assert rec["noc"] == (hits[0] if hits else 10) and rec["noc_reached"] == bool(hits)
            # the simulator went on past --max-clicks when needed for NoC
            assert len(rec["mse_trace"]) >= min(rec["noc"], 2)
            first = rec["clicks"][0]
            assert first["label"] == "fg"
        s = eng["summary"]
        assert s["n_images"] == 3 and len(s["per_click"]) == 2
        mean_sad = np.mean([rec["per_click"][0]["sad"] for rec in eng["images"].values()])
        assert s["per_click"][0]["sad"] == pytest.approx(mean_sad)
        assert s["per_click"][0]["mse_x1e3"] == pytest.approx(1e3 * s["per_click"][0]["mse"])
    # the classical pipeline solves these easy scenes
    assert report["engines"]["classical"]["summary"]["per_click"][1]["mse"] < 0.01
    md = (out / "summary.md").read_text()
    assert "| net | 1 | 3 |" in md and "NoC@MSE10" in md and "g_garbage.png" in md


def test_eval_with_clicks_file(data_dir: Path, tmp_path: Path) -> None:
    clicks = {
        "a.png": [{"x": 20, "y": 18, "label": "fg"}, {"x": 2, "y": 2, "label": "bg"}, {"x": 45, "y": 37, "label": "bg"}],
        "b.png": [{"x": 24, "y": 20, "label": "fg"}],
    }
    cf = tmp_path / "clicks.json"
    cf.write_text(json.dumps(clicks))
    out = tmp_path / "r"
    rc = main(["--data", str(data_dir), "--clicks", str(cf), "--engine", "classical", "--max-clicks", "2",
               "--out", str(out), "--quiet"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["clicks_source"] == "file"
    imgs = report["engines"]["classical"]["images"]
    assert set(imgs) == {"a.png", "b.png"}
    used = imgs["a.png"]["clicks"]
    assert len(used) >= 2 and used == clicks["a.png"][: len(used)]  # the first k, in order
    assert imgs["b.png"]["per_click"][1]["carried"] is True  # one click only: the 1-click result stands
    assert imgs["b.png"]["per_click"][1]["sad"] == imgs["b.png"]["per_click"][0]["sad"]
    skipped = {s["name"]: s["reason"] for s in report["skipped"]}
    assert "no clicks" in skipped["c.png"]


def test_names_and_limit(data_dir: Path, tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("c\nb.png\nzzz.png\n")
    out = tmp_path / "r"
    assert main(["--data", str(data_dir), "--names-file", str(names), "--engine", "classical", "--max-clicks", "1",
                 "--limit", "1", "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["engines"]["classical"]["images"]) == ["c.png"]
    assert any(s["name"] == "zzz.png" for s in report["skipped"])


def test_cli_rejects_bad_arguments(data_dir: Path, tmp_path: Path) -> None:
    for argv in (
        ["--engine", "magic"],
        ["--refine-random"],
        ["--max-clicks", "0"],
        ["--split", "dev", "--names-file", "x.txt"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(["--data", str(data_dir), "--out", str(tmp_path / "x"), *argv])
        assert exc.value.code == 2
    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "y"), "--engine", "classical"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"a.png": [{"x": 1}]}')
    assert main(["--data", str(data_dir), "--clicks", str(bad), "--engine", "classical", "--out", str(tmp_path / "z")]) == 2


def test_find_pairs_and_load_pair(data_dir: Path) -> None:
    pairs, skipped = find_pairs(data_dir)
    assert [p.name for p in pairs] == ["a.png", "b.png", "c.png", "d_mismatch.png", "e_colour.png", "g_garbage.png"]
    assert skipped == [{"name": "f_noalpha.png", "reason": "missing alpha/f_noalpha.png"}]
    by_name = {p.name: p for p in pairs}
    rgb, a = load_pair(by_name["b.png"])  # an RGB alpha with equal channels: its gray values, as uint8
    assert rgb.shape == (40, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, _scene(40, 48, 24, 20, 1)[1])
    for name, reason in (("e_colour.png", "unequal channels"), ("d_mismatch.png", "size mismatch"),
                         ("g_garbage.png", "unreadable")):
        with pytest.raises(ValueError, match=reason):
            load_pair(by_name[name])
    with pytest.raises(ValueError, match="cannot read alpha"):
        load_pair(Pair("x.png", data_dir / "image" / "a.png", data_dir / "alpha" / "nothing.png"))


def test_random_boxes_do_not_overlap() -> None:
    rng = np.random.default_rng(0)
    boxes = random_boxes(320, 300, 8, 64, rng)
    assert len(boxes) == 8
    for i, (x, y, w, h) in enumerate(boxes):
        assert w == 64 and h == 64 and 0 <= x <= 300 - 64 and 0 <= y <= 320 - 64
        for (x2, y2, w2, h2) in boxes[i + 1:]:
            assert x >= x2 + w2 or x2 >= x + w or y >= y2 + h2 or y2 >= y + h
    assert random_boxes(40, 48, 3, 64, rng) == [(0, 0, 48, 40)]  # only one box fits a small image
    # packing stops only when no free position is left: a 128 x 128 image holds at most 4
    for seed in range(5):
        got = random_boxes(128, 128, 8, 64, np.random.default_rng(seed))
        assert 1 <= len(got) <= 4


def test_random_boxes_follow_the_soft_limit() -> None:
    """With max_soft the random patches come from the same windows as the predictor's own choice."""
    alpha = np.full((256, 256), 0.5, np.float32)
    alpha[:, 128:] = 1.0  # the right half is sure foreground, the left half all soft
    for seed in range(5):
        got = random_boxes(256, 256, 8, 64, np.random.default_rng(seed), alpha=alpha, max_soft=0.1)
        assert 1 <= len(got) <= 8
        for x, y, w, h in got:
            assert x >= 128  # on the 8-px grid, x = 120 would hold 8 soft columns of 64 (12.5 %)
    assert random_boxes(256, 256, 8, 64, np.random.default_rng(0), alpha=np.full_like(alpha, 0.5), max_soft=0.1) == []
    with pytest.raises(ValueError, match="coarse alpha"):
        random_boxes(256, 256, 8, 64, np.random.default_rng(0), max_soft=0.1)


def test_refinement_top_vs_random_from_the_same_coarse_state() -> None:
    img, gt = _scene(200, 260, 130, 100, 3)
    engine = NetEngine(device="cpu", config=PredictorConfig(working_size=160))
    rec, final = evaluate_image(engine, img, gt, max_clicks=1, noc_cap=1, refine_top_n=2, refine_random=True,
                                rng=np.random.default_rng(1))
    ref = rec["refine"]
    assert len(ref["top"]["boxes"]) == 2 and len(ref["random"]["boxes"]) == 2
    assert ref["coarse"]["sad"] == rec["per_click"][0]["sad"]
    # the predictor is left at the coarse prediction, not at a refined one
    np.testing.assert_array_equal(engine.predictor.alpha, final["alpha"])
    (x1, y1, w1, h1), (x2, y2, w2, h2) = (tuple(b) for b in ref["random"]["boxes"])
    assert x1 >= x2 + w2 or x2 >= x1 + w1 or y1 >= y2 + h2 or y2 >= y1 + h1


def test_split_dev_selects_the_dev_names(tmp_path: Path) -> None:
    from clickmatte.model.training.splits import dev_names

    dev = dev_names()[0]
    d = tmp_path / "d"
    for i, name in enumerate((dev, "not_dev.png")):
        img, alpha = _scene(40, 48, 22, 20, i)
        _write(d / "image" / name, img)
        _write(d / "alpha" / name, alpha)
    out = tmp_path / "r"
    assert main(["--data", str(d), "--split", "dev", "--engine", "classical", "--max-clicks", "1",
                 "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["engines"]["classical"]["images"]) == [dev]
    assert report["config"]["names_source"] == "split dev"


def test_compare_merges_an_earlier_report(data_dir: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["--data", str(data_dir), "--engine", "classical", "--max-clicks", "1", "--limit", "2", "--quiet"]
    assert main([*args, "--out", str(first)]) == 0
    assert main([*args, "--out", str(second), "--compare", str(first)]) == 0
    report = json.loads((second / "report.json").read_text())
    assert set(report["engines"]) == {"classical", "classical (first)"}
    assert report["engines"]["classical (first)"]["merged_from"] == str(first)
    assert "| classical (first) | 1 | 2 |" in (second / "summary.md").read_text()
    assert not report.get("notes")  # same data, same settings: nothing to warn about
    # the same folder given as a relative path is the same data; another folder is not
    rel = os.path.relpath(data_dir)
    third = tmp_path / "third_rel"
    assert main(["--data", rel, *args[2:], "--out", str(third), "--compare", str(first)]) == 0
    assert not json.loads((third / "report.json").read_text()).get("notes")
    other_data = tmp_path / "other_data"
    shutil.copytree(data_dir, other_data)
    fourth = tmp_path / "fourth"
    assert main(["--data", str(other_data), *args[2:], "--out", str(fourth), "--compare", str(first)]) == 0
    assert any("data differs" in n for n in json.loads((fourth / "report.json").read_text())["notes"])
    # a folder without a report fails before any work is done
    assert main([*args, "--out", str(tmp_path / "third"), "--compare", str(tmp_path / "nothing")]) == 2
    assert not (tmp_path / "third").exists()


def test_no_prior_pass_reaches_the_predictor(data_dir: Path, tmp_path: Path) -> None:
    """--no-prior-pass is recorded in the report and changes the one-click answer (one pass less)."""
    sads = {}
    for flag in ([], ["--no-prior-pass"]):
        out = tmp_path / ("plain" if flag else "prior")
        assert main(["--data", str(data_dir), "--engine", "net", "--max-clicks", "1", "--limit", "1",
                     "--out", str(out), "--quiet", *flag]) == 0
        eng = json.loads((out / "report.json").read_text())["engines"]["net"]
        assert eng["description"]["prior_pass"] is (not flag)
        sads[bool(flag)] = eng["summary"]["per_click"][0]["sad"]
    assert sads[True] != pytest.approx(sads[False], abs=1e-9)


def test_no_guided_reaches_the_predictor(data_dir: Path, tmp_path: Path) -> None:
    """--no-guided is recorded and, for images above --working-size, changes the upsampled answer."""
    sads = {}
    for flag in ([], ["--no-guided"]):
        out = tmp_path / ("bilinear" if flag else "guided")
        assert main(["--data", str(data_dir), "--engine", "net", "--max-clicks", "1", "--limit", "1",
                     "--working-size", "32", "--out", str(out), "--quiet", *flag]) == 0
        eng = json.loads((out / "report.json").read_text())["engines"]["net"]
        assert eng["description"]["guided"] is (not flag)
        sads[bool(flag)] = eng["summary"]["per_click"][0]["sad"]
    assert sads[True] != pytest.approx(sads[False], abs=1e-9)


def test_context_size_reaches_the_predictor(data_dir: Path, tmp_path: Path) -> None:
    """--context-size N is recorded and, for images larger than N, changes the answer; a bad N is an error."""
    sads = {}
    for size in ("0", "32"):
        out = tmp_path / f"ctx{size}"
        assert main(["--data", str(data_dir), "--engine", "net", "--max-clicks", "1", "--limit", "1",
                     "--context-size", size, "--out", str(out), "--quiet"]) == 0
        eng = json.loads((out / "report.json").read_text())["engines"]["net"]
        assert eng["description"]["context_size"] == int(size)
        sads[size] = eng["summary"]["per_click"][0]["sad"]
    assert sads["0"] != pytest.approx(sads["32"], abs=1e-9)
    assert main(["--data", str(data_dir), "--engine", "net", "--context-size", "8", "--out",
                 str(tmp_path / "bad"), "--quiet"]) == 2
    from clickmatte.model.inference.config import PredictorConfig, predictor_config_from_args
    from clickmatte.model.evaluate import build_parser

    # without flags the eval runs the library's defaults
    assert predictor_config_from_args(build_parser().parse_args(["--data", "d", "--out", "o"])) == PredictorConfig()


def test_soft_fraction_and_the_split_by_softness(data_dir: Path, tmp_path: Path) -> None:
    """Each image records its soft share; the summary splits SAD at 1 and N clicks at the median share."""
    from clickmatte.model.evaluation.eval_loop import soft_fraction

    gt = np.zeros((10, 10), np.uint8)
    gt[:, 5:] = 255
    gt[0, :3] = 128  # 3 soft pixels
    gt[1, 0] = 10  # 3.9 %: definite background, not soft
    assert soft_fraction(gt) == pytest.approx(0.03)
    out = tmp_path / "r"
    assert main(["--data", str(data_dir), "--engine", "classical", "--max-clicks", "2", "--out", str(out),
                 "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    images = report["engines"]["classical"]["images"]
    for name, rec in images.items():
        alpha = alpha_to_uint8(read_alpha(data_dir / "alpha" / name))
        assert rec["soft_fraction"] == pytest.approx(soft_fraction(alpha))
    groups = {g["group"]: g for g in report["engines"]["classical"]["summary"]["by_soft"]}
    recs = sorted(images.values(), key=lambda r: r["soft_fraction"])
    assert groups["less soft"]["n_images"] == len(recs) // 2 and groups["all"]["n_images"] == len(recs)
    more = recs[len(recs) // 2:]
    assert groups["more soft"]["sad_first"] == pytest.approx(np.mean([r["per_click"][0]["sad"] for r in more]))
    assert groups["more soft"]["sad_last"] == pytest.approx(np.mean([r["per_click"][1]["sad"] for r in more]))
    assert groups["less soft"]["soft_max"] <= groups["more soft"]["soft_min"]
    md = (out / "summary.md").read_text()
    assert "by how much of the ground truth is soft" in md and "| classical | all: 3 |" in md
    # the split of each SAD into definite and soft ground truth adds up and reaches the summary
    from clickmatte.model.evaluation.metrics import sad_split

    for rec in images.values():
        for row in rec["per_click"]:
            assert row["sad_definite"] + row["sad_soft"] == pytest.approx(row["sad"], rel=1e-6)
    region = report["engines"]["classical"]["summary"]["by_region"]
    assert [r["k"] for r in region] == [1, 2]
    assert region[1]["sad_soft"] == pytest.approx(np.mean([r["per_click"][1]["sad_soft"] for r in images.values()]))
    assert "definite vs soft ground truth" in md and "| classical | soft |" in md
    assert sad_split(gt, gt) == {"definite": 0.0, "soft": 0.0}
