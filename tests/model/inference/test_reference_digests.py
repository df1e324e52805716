"""The shipped weights give the same alpha, bit for bit, as when the digests were recorded.

``data/reference_digests.json`` holds, per case, the shape and the SHA-256 of the uint8 alpha
(``rint(clip(alpha, 0, 1) * 255)``, C order) after every click and after refining the top 8 patches:

- ``demo``: ``examples/lemur.png`` with ``examples/lemur_clicks.json`` through the daemon's
  :class:`~clickmatte.backend.engine.MattingEngine` with default settings, as ``make demo`` runs it
  (predict with all clicks, then refine top 8);
- ``dev/NNN.png``: dev crops of ``../shared/data/comp1k_crops`` through
  :class:`~clickmatte.model.Predictor` with default settings, three simulated clicks with the
  previous alpha fed back as uint8 (as ``clickmatte-eval`` does), then refine top 8. Skipped when
  ``../shared/data`` is absent.

torch runs on one CPU thread, in a child process whose kernels are pinned to AVX2
(:data:`PINNED_ISA`): oneDNN and ATen pick other kernels on a CPU with AVX-512, whose float sums
round differently, so without the pin the digests would depend on the machine. Re-record (only when
a change is meant to alter the answers) with
``python tests/model/inference/test_reference_digests.py --record``.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
DIGESTS = Path(__file__).with_name("data") / "reference_digests.json"
CROPS = ROOT.parent / "shared" / "data" / "comp1k_crops"
DEV_CASES = ("004.png", "022.png", "051.png")
CLICKS = 3
TOP_N = 8
#: environment of the child process: the same kernels on every x86-64 CPU with AVX2
PINNED_ISA = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "1"}


def alpha_digest(alpha: np.ndarray) -> dict[str, Any]:
    """``{"shape": [H, W], "sha256": hex}`` of ``alpha`` (float in [0, 1]) as uint8."""
    u8 = np.ascontiguousarray(np.clip(np.rint(np.clip(alpha, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8))
    return {"shape": list(u8.shape), "sha256": hashlib.sha256(u8.tobytes()).hexdigest()}


class _OneThread:
    def __enter__(self) -> None:
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)


def demo_digests() -> list[dict[str, Any]]:
    """Digests of the demo: the alpha after predict with all clicks, then after refine top 8."""
    from clickmatte.backend.cli import load_clicks_file, read_rgb
    from clickmatte.backend.engine import MattingEngine
    from clickmatte.backend.sessions import ImageEntry, Session

    rgb = read_rgb(ROOT / "examples" / "lemur.png")
    clicks = load_clicks_file(ROOT / "examples" / "lemur_clicks.json", "lemur.png")
    with _OneThread():
        engine = MattingEngine(device="cpu")
        session = Session("s", ImageEntry("d", rgb))
        alpha, _ = engine.predict(session, clicks, prev_alpha="auto")
        out = [alpha_digest(alpha)]
        refined, _ = engine.refine(session, TOP_N, None, None)
        out.append(alpha_digest(refined))
    return out


def dev_digests(name: str) -> list[dict[str, Any]]:
    """Digests of one dev crop: after each of :data:`CLICKS` simulated clicks, then after refine top 8."""
    from clickmatte.model import Predictor
    from clickmatte.model.evaluation.click_simulator import next_click
    from clickmatte.model.image_io import read_alpha, read_rgb

    rgb = read_rgb(CROPS / "image" / name)
    gt = read_alpha(CROPS / "alpha" / name)
    out = []
    with _OneThread():
        predictor = Predictor(device="cpu")
        predictor.set_image(rgb)
        clicks: list[dict] = []
        alpha = None
        for _ in range(CLICKS):
            c = next_click(gt, alpha, clicks)
            assert c is not None
            clicks.append(c)
            prev = None if alpha is None else (np.clip(alpha, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
            alpha, _ = predictor.predict(clicks, prev_alpha=prev)
            out.append(alpha_digest(alpha))
        out.append(alpha_digest(predictor.refine(top_n=TOP_N)))
    return out


def _recorded() -> dict[str, Any]:
    return json.loads(DIGESTS.read_text())


def pinned_digests(case: str) -> list[dict[str, Any]]:
    """The digests of ``case`` (``"demo"`` or a dev crop's name), computed in a child process with
    :data:`PINNED_ISA`."""
    env = {**os.environ, **PINNED_ISA}
    proc = subprocess.run([sys.executable, __file__, "--print", case], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"digest child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def test_demo_alpha_matches_recorded_digest():
    assert pinned_digests("demo") == _recorded()["demo"]


@pytest.mark.skipif(not CROPS.is_dir(), reason="../shared/data/comp1k_crops is not here")
@pytest.mark.parametrize("name", DEV_CASES)
def test_dev_crop_alpha_matches_recorded_digest(name):
    assert pinned_digests(name) == _recorded()["dev"][name]


def test_recorded_digests_cover_every_step():
    rec = _recorded()
    assert len(rec["demo"]) == 2
    assert sorted(rec["dev"]) == sorted(DEV_CASES)
    assert all(len(v) == CLICKS + 1 for v in rec["dev"].values())


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--print":
        print(json.dumps(demo_digests() if argv[1] == "demo" else dev_digests(argv[1])))
        return 0
    if argv != ["--record"]:
        sys.exit("usage: python tests/model/inference/test_reference_digests.py --record | --print demo|NNN.png")
    if any(os.environ.get(k) != v for k, v in PINNED_ISA.items()):  # record under the same pin as the tests
        return subprocess.run([sys.executable, __file__, "--record"], env={**os.environ, **PINNED_ISA}).returncode
    DIGESTS.parent.mkdir(exist_ok=True)
    record = {"demo": demo_digests(), "dev": {n: dev_digests(n) for n in DEV_CASES}}
    DIGESTS.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
