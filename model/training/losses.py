"""Losses of the paper, as plain functions on ``(B, 1, H, W)`` tensors.

- :func:`regression_loss`: L1 over the transition region T (0 < alpha_gt < 1) plus L2 over the
  solid region S (alpha_gt in {0, 1}), each averaged over its own pixels.
- :func:`gradient_loss`: ``mean |grad alpha_p - grad alpha_g|`` with forward differences.
- :func:`laplace_nll`: ``mean(log sigma + |alpha_g - alpha_p| / sigma)`` on a *detached* alpha_p.
- :func:`refinement_loss`: ``mean |alpha_p - alpha_g| + lambda * mean_H |alpha_p - alpha_g|``,
  H = the hardest ``hard_fraction`` of pixels of each patch.
- :func:`mask_loss`: binary cross-entropy + L1 against a binary mask, averaged over the pixels
  where ``weight`` > 0 (a mask's anti-aliased edge band is not matting ground truth).
- :func:`matting_losses`: a dict of named terms and their weighted ``total``.
"""
from __future__ import annotations

from typing import Optional

import torch


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    n = mask.sum()
    return (x * mask).sum() / n if n > 0 else x.sum() * 0.0


def transition_mask(target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """1 where the ground-truth alpha is strictly between 0 and 1 (up to ``eps``)."""
    return ((target > eps) & (target < 1 - eps)).float()


def regression_loss(pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """L1 on the transition region + L2 on the solid region (each a mean over its pixels)."""
    _check(pred, target)
    t = transition_mask(target)
    s = 1.0 - t
    if weight is not None:
        t, s = t * weight, s * weight
    return _masked_mean((pred - target).abs(), t) + _masked_mean((pred - target) ** 2, s)


def gradient_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean |d/dx (p - g)| + mean |d/dy (p - g)|`` with forward differences."""
    _check(pred, target)
    d = pred - target
    gx = (d[..., :, 1:] - d[..., :, :-1]).abs().mean() if d.shape[-1] > 1 else d.sum() * 0
    gy = (d[..., 1:, :] - d[..., :-1, :]).abs().mean() if d.shape[-2] > 1 else d.sum() * 0
    return gx + gy


def laplace_nll(sigma: torch.Tensor, pred: torch.Tensor, target: torch.Tensor,
                weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Laplace negative log-likelihood ``mean(log sigma + |target - pred| / sigma)``; ``pred`` is detached.

    With ``weight`` (same shape, >= 0) the mean is over the weighted pixels only."""
    _check(pred, target)
    _check(sigma, target)
    if (sigma <= 0).any():
        raise ValueError("sigma must be > 0")
    err = (target - pred.detach()).abs()
    nll = torch.log(sigma) + err / sigma
    if weight is None:
        return nll.mean()
    _check(weight, target)
    return _masked_mean(nll, weight)


def mask_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """``BCE(pred, target > 0.5) + |pred - (target > 0.5)|``, averaged over pixels with ``weight`` > 0.

    ``pred`` is an alpha in [0, 1]; ``target`` a mask in [0, 1]; ``weight`` >= 0 (0 = ignored)."""
    _check(pred, target)
    _check(weight, target)
    t = (target > 0.5).float()
    p = pred.clamp(eps, 1 - eps)
    bce = -(t * torch.log(p) + (1 - t) * torch.log(1 - p))
    return _masked_mean(bce + (pred - t).abs(), weight)


def refinement_loss(
    pred: torch.Tensor, target: torch.Tensor, lam: float = 1.0, hard_fraction: float = 0.2
) -> torch.Tensor:
    """Mean L1 plus ``lam`` times the mean L1 of the hardest ``hard_fraction`` pixels of each patch."""
    _check(pred, target)
    if not 0 < hard_fraction <= 1:
        raise ValueError(f"hard_fraction must be in (0, 1], got {hard_fraction}")
    err = (pred - target).abs().flatten(1)
    k = max(1, int(round(err.shape[1] * hard_fraction)))
    hard = err.topk(k, dim=1).values
    return err.mean() + lam * hard.mean()


def matting_losses(
    pred: torch.Tensor,
    target: torch.Tensor,
    w_regression: float = 1.0,
    w_gradient: float = 1.0,
    sigma: Optional[torch.Tensor] = None,
    w_uncertainty: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Named loss terms and their weighted sum under ``"total"``.

    With ``sigma`` the Laplace NLL (on the detached alpha) is added as ``"uncertainty"``.
    """
    terms = {
        "regression": regression_loss(pred, target),
        "gradient": gradient_loss(pred, target),
    }
    total = w_regression * terms["regression"] + w_gradient * terms["gradient"]
    if sigma is not None:
        terms["uncertainty"] = laplace_nll(sigma, pred, target)
        total = total + w_uncertainty * terms["uncertainty"]
    terms["total"] = total
    return terms
