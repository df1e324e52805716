"""Fine-tune the refiner on the predictor's own coarse states (what it will be applied to).

Stage 3 of :mod:`clickmatte.model.train` trains the refiner on mined hard patches of a plain coarse pass. At
inference the coarse alpha comes from the :class:`~.predictor.Predictor` (flip TTA, prior pass,
context pass, guided upsampling) after simulated clicks, and the patches are the most uncertain
ones. Here both are reproduced exactly:

- :func:`harvest` runs the predictor with the error-driven click simulator on image/alpha pairs
  and, after each click, crops the ``top_n`` most uncertain windows (as :meth:`Predictor.refine`
  picks them, but without its soft limit at full resolution, so soft windows are learnt too) and
  ``n_random`` random ones, with the refiner's context margin.
- :func:`finetune` trains the refiner on such patches (L1 + ``l2_weight`` x L2, flips and
  90-degree turns, BatchNorm statistics frozen) and :func:`patch_gain` measures what it does on
  held-out patches (SAD change of the top-8 against the coarse alpha).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Union

import numpy as np
import torch

from ..evaluation.click_simulator import next_click
from ..inference.predictor import Predictor
from ..network.refiner import PatchRefiner, crop_patches, select_patches


@dataclass
class PatchPool:
    """Refiner inputs and targets.

    ``x``: ``(N, 5, k + 2m, k + 2m)`` float16 (RGB in [0, 1], coarse alpha, sigma);
    ``gt``: ``(N, 1, k, k)`` float16 ground-truth alpha of the centre; ``rank``: ``(N,)`` the
    window's place in the uncertainty order (0 = most uncertain), -1 for a random window;
    ``group``: ``(N,)`` index of the image the patch came from.
    """

    x: np.ndarray
    gt: np.ndarray
    rank: np.ndarray
    group: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, idx: np.ndarray) -> "PatchPool":
        return PatchPool(self.x[idx], self.gt[idx], self.rank[idx], self.group[idx])


def harvest(
    predictor: Predictor,
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    clicks: int = 5,
    top_n: int = 12,
    n_random: int = 4,
    seed: int = 0,
) -> PatchPool:
    """Patches of the predictor's coarse states after 1..``clicks`` simulated clicks.

    ``pairs``: ``(rgb (H, W, 3) uint8, alpha (H, W) uint8)``. The clicks come from the evaluation
    simulator with the previous prediction fed back, as in ``clickmatte-eval``.
    """
    if clicks < 1 or top_n < 0 or n_random < 0:
        raise ValueError(f"need clicks >= 1, top_n >= 0, n_random >= 0; got {clicks}, {top_n}, {n_random}")
    k = predictor.model.refiner.config.patch_size
    m = predictor.model.refiner.config.margin
    rng = np.random.default_rng(seed)
    xs, gts, ranks, groups = [], [], [], []
    for g, (rgb, gt8) in enumerate(pairs):
        gt = gt8.astype(np.float32) / 255.0
        predictor.set_image(rgb)
        done: list[dict] = []
        prev: Optional[np.ndarray] = None
        for _ in range(clicks):
            c = next_click(gt, prev, done)
            if c is None:
                break
            done.append(c)
            prev, sigma = predictor.predict(done, prev_alpha=prev)
            boxes = select_patches(sigma, top_n, k)
            n_top = len(boxes)
            boxes += _random_windows(gt.shape, n_random, k, rng)
            xs.append(np.concatenate([
                crop_patches(rgb, boxes, m, k).astype(np.float32) / 255.0,
                crop_patches(prev[..., None], boxes, m, k),
                crop_patches(sigma[..., None], boxes, m, k),
            ], 1).astype(np.float16))
            gts.append(crop_patches(gt[..., None], boxes, 0, k).astype(np.float16))
            ranks.append(np.r_[np.arange(n_top), np.full(len(boxes) - n_top, -1)])
            groups.append(np.full(len(boxes), g))
    if not xs:
        raise ValueError("no patches: no image, or no click could be placed")
    return PatchPool(np.concatenate(xs), np.concatenate(gts), np.concatenate(ranks), np.concatenate(groups))


def _random_windows(shape: tuple[int, ...], n: int, k: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    h, w = shape[:2]
    kh, kw = min(k, h), min(k, w)
    return [(int(rng.integers(0, w - kw + 1)), int(rng.integers(0, h - kh + 1)), kw, kh) for _ in range(n)]


def _forward(refiner: PatchRefiner, x: torch.Tensor) -> torch.Tensor:
    return refiner(x[:, :3], x[:, 3:4], x[:, 4:5])


@torch.no_grad()
def patch_gain(refiner: PatchRefiner, pool: PatchPool, top: int = 8, batch: int = 256) -> dict[str, float]:
    """What the refiner does to the ``top`` most uncertain patches of each state in ``pool``.

    Runs on the refiner's device. Returns summed changes against the coarse alpha: ``sad``
    (sum |error| / 1000) and ``sq`` (sum of squared error); negative = better.
    """
    idx = np.where((pool.rank >= 0) & (pool.rank < top))[0]
    m = refiner.config.margin
    k = refiner.config.patch_size
    device = next(refiner.parameters()).device
    was_training = refiner.training
    refiner.eval()
    sad = sq = 0.0
    for i in range(0, len(idx), batch):
        x = torch.from_numpy(pool.x[idx[i : i + batch]]).to(device).float()
        gt = torch.from_numpy(pool.gt[idx[i : i + batch]]).to(device).float()
        out = _forward(refiner, x)
        coarse = x[:, 3:4, m : m + k, m : m + k]
        sad += float(((out - gt).abs() - (coarse - gt).abs()).sum()) / 1000.0
        sq += float(((out - gt) ** 2 - (coarse - gt) ** 2).sum())
    refiner.train(was_training)
    return {"sad": sad, "sq": sq, "patches": float(len(idx))}


def finetune(
    refiner: PatchRefiner,
    pool: PatchPool,
    steps: int,
    lr: float = 1e-4,
    batch: int = 48,
    l2_weight: float = 1.0,
    seed: int = 0,
    log_every: int = 0,
    val: Optional[PatchPool] = None,
    device: Union[str, torch.device] = "cpu",
    cosine: bool = False,
    on_log: Optional[Callable[[int, dict[str, float]], None]] = None,
) -> list[float]:
    """Train ``refiner`` in place on ``pool`` for ``steps`` AdamW steps; returns the loss per step.

    BatchNorm layers keep their statistics (eval mode): the pool is small and its patches are
    not what the statistics were gathered on. The refiner is moved to ``device``; so is the
    whole pool (float16), once. ``cosine`` decays the learning rate to 0 over ``steps``. With
    ``log_every`` and ``val``, prints :func:`patch_gain` on ``val`` every ``log_every`` steps
    and hands it to ``on_log(step, gain)`` (e.g. to keep the best weights).
    """
    if steps < 0 or batch < 1 or len(pool) == 0:
        raise ValueError(f"need steps >= 0, batch >= 1 and a non-empty pool; got {steps}, {batch}, {len(pool)}")
    rng = np.random.default_rng(seed)
    device = torch.device(device)
    refiner.to(device)
    xs, gts = torch.from_numpy(pool.x).to(device), torch.from_numpy(pool.gt).to(device)
    opt = torch.optim.AdamW(refiner.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps)) if cosine else None
    losses: list[float] = []
    for step in range(1, steps + 1):
        refiner.train()
        for mod in refiner.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.eval()
        bi = torch.from_numpy(rng.integers(0, len(pool), batch)).to(device)
        x = xs[bi].float()
        gt = gts[bi].float()
        if rng.random() < 0.5:
            x, gt = x.flip(-1), gt.flip(-1)
        turns = int(rng.integers(4))
        x, gt = torch.rot90(x, turns, (2, 3)), torch.rot90(gt, turns, (2, 3))
        out = _forward(refiner, x)
        loss = (out - gt).abs().mean() + l2_weight * ((out - gt) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
        if log_every and val is not None and (step % log_every == 0 or step == steps):
            g = patch_gain(refiner, val)
            print(f"step {step}: loss {np.mean(losses[-log_every:]):.4f}; held-out top-8 "
                  f"SAD change {g['sad']:+.3f}, squared error change {g['sq']:+.1f}", flush=True)
            if on_log is not None:
                on_log(step, g)
    refiner.eval()
    return losses
