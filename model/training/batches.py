"""Training batches by step (:class:`BatchSource`, seeded by seed, stage and step so that any DataLoader
worker draws the same batch), moved to the device by :func:`_to`."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import cv2
import numpy as np
import torch

from .data import CompositeSampler, pack_batch
from .train_config import STAGES, TrainConfig


def _to(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    """A :func:`~.data.pack_batch` batch as float32 tensors on ``device`` (rgb in [0, 1])."""
    out = {k: torch.from_numpy(v).to(device, non_blocking=True).float() for k, v in batch.items()}
    out["rgb"] /= 255.0
    return out


def _identity(x: Any) -> Any:
    return x


class BatchSource(torch.utils.data.Dataset):
    """Step -> ``(arrays, samples, iterate, seed)``: the packed batch (:func:`pack_batch`), whether
    the step adds RITM-style clicks, its samples (without images) when it does, and their seed.

    Seeded by (seed, stage, step) alone, so a step draws the same batch in the training process
    and in any DataLoader worker."""

    def __init__(self, sampler: CompositeSampler, cfg: "TrainConfig", stage: str) -> None:
        self.sampler, self.cfg, self.stage = sampler, cfg, stage

    def __len__(self) -> int:
        return 1 << 40

    def __getitem__(self, step: int):
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, STAGES.index(self.stage), int(step)])
        samples = [self.sampler.sample(rng) for _ in range(cfg.batch)]
        iterate = self.stage == "matting" and bool(rng.random() < cfg.p_iterative)
        if self.stage == "refiner" and cfg.p_iterative_refiner > 0:  # (no draw otherwise: same batches as before)
            iterate = bool(rng.random() < cfg.p_iterative_refiner)
        arrays = pack_batch(samples, cfg.radius)
        # only RITM-style steps need the samples (alpha and clicks), and never their images again
        light = [replace(x, image=x.image[:0]) for x in samples] if iterate else []
        return arrays, light, iterate, int(rng.integers(1 << 62))


def _worker_init(_: int) -> None:
    cv2.setNumThreads(1)  # one process per core already
