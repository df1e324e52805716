"""Augmentation of training layers: :func:`random_affine` (a random scale, rotation and shift onto a square
canvas) and :func:`augment_layer` (a foreground and its alpha warped, flipped and recoloured).
"""
from __future__ import annotations

import cv2
import numpy as np


def random_affine(rng: np.random.Generator, src: int, dst: int, scale: tuple[float, float],
                  max_rot: float, center_jitter: float) -> np.ndarray:
    """A random 2x3 affine map from a ``src`` x ``src`` picture onto a ``dst`` x ``dst`` canvas: scale
    ``uniform(*scale) * dst / src``, rotation within ``+-max_rot`` degrees about the centre, centre moved by
    up to ``center_jitter * dst`` px each way."""
    s = rng.uniform(*scale) * dst / src
    ang = rng.uniform(-max_rot, max_rot)
    m = cv2.getRotationMatrix2D((src / 2, src / 2), ang, s)
    cx = dst / 2 + rng.uniform(-center_jitter, center_jitter) * dst
    cy = dst / 2 + rng.uniform(-center_jitter, center_jitter) * dst
    m[0, 2] += cx - src / 2
    m[1, 2] += cy - src / 2
    return m


def augment_layer(rng: np.random.Generator, fg: np.ndarray, alpha: np.ndarray, dst: int,
                  scale: tuple[float, float] = (0.8, 1.25), max_rot: float = 15.0,
                  center_jitter: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Warp a foreground (float HxWx3 in [0, 1]) and its alpha onto a ``dst`` x ``dst`` canvas."""
    if rng.random() < 0.5:
        fg, alpha = fg[:, ::-1], alpha[:, ::-1]
    m = random_affine(rng, fg.shape[0], dst, scale, max_rot, center_jitter)
    f = cv2.warpAffine(np.ascontiguousarray(fg), m, (dst, dst), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    a = cv2.warpAffine(np.ascontiguousarray(alpha), m, (dst, dst), flags=cv2.INTER_LINEAR, borderValue=0)
    # appearance: foregrounds of any colour and brightness (the crops are mostly light hair and fur,
    # which otherwise teaches "bright = foreground")
    u = rng.random()
    if u < 0.2:
        f = 1.0 - f  # dark hair from light hair
    elif u < 0.4:
        f = f * rng.uniform(0.1, 0.5)  # darker object
    if rng.random() < 0.3:
        f = f[..., rng.permutation(3)]
    # colour jitter: gain, bias, saturation
    f = f * rng.uniform(0.75, 1.25, 3).astype(np.float32) + rng.uniform(-0.06, 0.06)
    gray = f.mean(axis=2, keepdims=True)
    f = gray + (f - gray) * rng.uniform(0.6, 1.3)
    return np.clip(f, 0, 1).astype(np.float32), np.clip(a, 0, 1).astype(np.float32)
