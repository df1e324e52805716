"""Turning alpha and uncertainty into images people look at."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .inference.clicks import ClickLike, as_click

UNCERTAINTY_FULL_SCALE = 0.25  # sigma at which the 8-bit uncertainty map saturates


def alpha_to_uint8(alpha: np.ndarray) -> np.ndarray:
    """``(H, W)`` float alpha in [0, 1] -> uint8 (rounded)."""
    return np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)


def uncertainty_to_uint8(sigma: np.ndarray, full_scale: float = UNCERTAINTY_FULL_SCALE) -> np.ndarray:
    """Laplace scale sigma -> uint8, linear, 255 at ``full_scale`` and above."""
    return np.clip(np.rint(sigma / full_scale * 255.0), 0, 255).astype(np.uint8)


def colorize_uncertainty(u8: np.ndarray) -> np.ndarray:
    """uint8 uncertainty -> ``(H, W, 3)`` RGB heat map (dark = sure, bright yellow = unsure)."""
    bgr = cv2.applyColorMap(u8, cv2.COLORMAP_INFERNO)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def draw_clicks(rgb: np.ndarray, clicks: Sequence[ClickLike], radius: int = 7) -> np.ndarray:
    """Foreground clicks as green discs with '+', background as red discs with '-' (shape cue, not colour only)."""
    out = rgb.copy()
    for c in (as_click(c) for c in clicks):
        p = (int(round(c.x)), int(round(c.y)))
        col = (40, 220, 40) if c.is_fg else (230, 40, 40)
        cv2.circle(out, p, radius + 2, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(out, p, radius, col, -1, cv2.LINE_AA)
        cv2.line(out, (p[0] - radius + 2, p[1]), (p[0] + radius - 2, p[1]), (255, 255, 255), 2)
        if c.is_fg:
            cv2.line(out, (p[0], p[1] - radius + 2), (p[0], p[1] + radius - 2), (255, 255, 255), 2)
    return out


def checkerboard(h: int, w: int, cell: int = 16) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    board = (((yy // cell) + (xx // cell)) % 2).astype(np.uint8)
    return np.where(board[..., None] == 1, 200, 150).astype(np.uint8).repeat(3, axis=2)


def preview(rgb: np.ndarray, alpha: np.ndarray, sigma: np.ndarray, clicks: Sequence[ClickLike],
            foreground: np.ndarray | None = None) -> np.ndarray:
    """Side by side: input with clicks | alpha | uncertainty | cut-out over a checkerboard."""
    h, w = alpha.shape
    fg = rgb.astype(np.float32) if foreground is None else foreground.astype(np.float32)
    a = alpha[..., None]
    comp = fg * a + checkerboard(h, w).astype(np.float32) * (1 - a)
    tiles = [
        draw_clicks(rgb, clicks),
        np.repeat(alpha_to_uint8(alpha)[..., None], 3, axis=2),
        colorize_uncertainty(uncertainty_to_uint8(sigma)),
        np.clip(comp, 0, 255).astype(np.uint8),
    ]
    gap = np.full((h, 4, 3), 255, np.uint8)
    row = []
    for t in tiles:
        row += [t, gap]
    return np.concatenate(row[:-1], axis=1)
