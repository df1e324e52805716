"""The files of an evaluation: ``DATA/image/NAME`` + ``DATA/alpha/NAME.png`` (or ``DATA/mask/NAME.png``) pairs,
their pixels (``(H, W, 3)`` uint8 RGB, ``(H, W)`` uint8 truth) and a clicks file
``{"NAME.png": [{"x", "y", "label"}, ...]}``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from ..image_io import read_alpha
from ..visualize import alpha_to_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class Pair:
    name: str
    image_path: Path
    alpha_path: Path


def read_image(path: Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from an 8-bit file (gray is expanded, an alpha channel dropped)."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError("unreadable image file")
    if raw.dtype != np.uint8:
        raise ValueError(f"image is {raw.dtype}, expected 8-bit")
    if raw.ndim == 2:
        return np.repeat(raw[..., None], 3, axis=2)
    if raw.shape[2] == 4:
        raw = raw[:, :, :3]
    if raw.shape[2] != 3:
        raise ValueError(f"image has {raw.shape[2]} channels")
    return np.ascontiguousarray(raw[:, :, ::-1])


def norm_name(name: str) -> str:
    return Path(name.strip()).stem


def find_pairs(data: Path, names: Optional[Sequence[str]] = None, truth: str = "alpha") -> tuple[list[Pair], list[dict]]:
    """Pairs ``image/NAME`` + ``TRUTH/NAME.png`` in ``data`` (optionally only ``names``), and what was skipped.

    ``truth``: the ground-truth folder, ``"alpha"`` (mattes) or ``"mask"`` (binary masks). Names
    are matched with or without their extension. Returns ``(pairs sorted by name,
    [{"name", "reason"}])``; reading the pixels happens later (:func:`load_pair`).
    """
    if truth not in ("alpha", "mask"):
        raise ValueError(f"truth must be 'alpha' or 'mask', got {truth!r}")
    img_dir, alpha_dir = data / "image", data / truth
    if not img_dir.is_dir():
        raise ValueError(f"{data} has no image/ folder")
    images = {p.stem: p for p in sorted(img_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}
    alphas = (
        {p.stem: p for p in sorted(alpha_dir.iterdir()) if p.suffix.lower() == ".png" and p.is_file()}
        if alpha_dir.is_dir() else {}
    )
    skipped: list[dict] = []
    if names is None:
        wanted = sorted(images)
        skipped += [{"name": alphas[s].name, "reason": f"{truth} without an image"} for s in sorted(set(alphas) - set(images))]
    else:
        wanted = []
        for n in names:
            s = norm_name(n)
            if s not in images:
                skipped.append({"name": n, "reason": f"not found in {img_dir}"})
            elif s not in wanted:
                wanted.append(s)
    pairs = []
    for s in wanted:
        if s not in alphas:
            skipped.append({"name": images[s].name, "reason": f"missing {truth}/{s}.png"})
            continue
        pairs.append(Pair(images[s].name, images[s], alphas[s]))
    return pairs, skipped


def load_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb (H, W, 3) uint8, alpha (H, W) uint8)`` (the truth as :func:`~clickmatte.model.image_io.read_alpha`
    reads it, rounded to 8 bits); ``ValueError`` when unreadable or mismatched."""
    rgb = read_image(pair.image_path)
    alpha = alpha_to_uint8(read_alpha(pair.alpha_path))
    if rgb.shape[:2] != alpha.shape:
        raise ValueError(f"size mismatch: image {rgb.shape[1]}x{rgb.shape[0]}, alpha {alpha.shape[1]}x{alpha.shape[0]}")
    return rgb, alpha


def load_clicks_file(path: Path) -> dict[str, list[dict]]:
    """``{"NAME.png": [{"x", "y", "label"}, ...]}`` from JSON, keyed by name stem; ``ValueError`` if malformed."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read clicks file {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected an object {{\"NAME.png\": [clicks]}}")
    out: dict[str, list[dict]] = {}
    for name, clicks in raw.items():
        if not isinstance(clicks, list) or not all(
            isinstance(c, dict) and {"x", "y", "label"} <= set(c) for c in clicks
        ):
            raise ValueError(f"{path}: clicks for {name!r} must be a list of {{\"x\", \"y\", \"label\"}}")
        out[norm_name(name)] = clicks
    return out
