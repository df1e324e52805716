import numpy as np
import pytest
from PIL import Image
import torch

from clickmatte.model.network.registry import build_model


@pytest.fixture(scope="session")
def small_model():
    """The thin registered variant with random weights (the tests check mechanics, not quality)."""
    torch.manual_seed(0)
    return build_model("clickmatte-lite0-small").eval()


def _make_crops(root, n=3, size=64):
    """Write ``n`` soft-edged disc crops (``image/``, ``alpha/``) under ``root``; return their names."""
    (root / "image").mkdir(parents=True)
    (root / "alpha").mkdir()
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        yy, xx = np.mgrid[0:size, 0:size]
        r = np.hypot(yy - size / 2, xx - size / 2)
        alpha = np.clip((size * 0.3 - r) / 3 + 0.5, 0, 1)  # a disc with a soft edge
        fg = np.array([200, 40 * i, 90], np.float32)
        bg = rng.uniform(0, 255, 3)
        img = fg * alpha[..., None] + bg * (1 - alpha[..., None])
        name = f"{i:03d}.png"
        Image.fromarray(img.astype(np.uint8)).save(root / "image" / name)
        Image.fromarray((alpha * 255).astype(np.uint8)).save(root / "alpha" / name)
        names.append(name)
    return names


@pytest.fixture()
def make_crops():
    return _make_crops
