"""``clickmatte-train``: the paper's three training stages on CPU or CUDA.

1. ``matting``: encoder + alpha decoder, regression (L1 transition + L2 solid) + gradient loss
   (+ an optional plain L1 term), simulated clicks (Geometric(1/6), r = 15), multi-object
   composites, simulated previous alpha with corrective clicks.
2. ``uncertainty``: matting net frozen; uncertainty decoder trained with the Laplace NLL on the
   detached alpha, at random working scales (as at inference, where the net runs at a bounded
   long side).
3. ``refiner``: the coarse net runs at a reduced scale, its output is upsampled to the sample
   size, the hardest 64 x 64 patches (largest coarse error) are mined, alternating with the most
   uncertain ones (what inference picks), and the refiner is trained with L1 + lambda * L1 over
   the hardest 20 % of pixels. With ``p_iterative_refiner`` the coarse alpha of those batches
   comes after RITM-style corrective clicks (as a matte the user has clicked on).

Resumable (``--out DIR`` holds ``state.pt``), seeded, with a progress bar. ``--export PATH``
writes the fp16 checkpoint ``{"config", "state_dict", "meta"}`` the Predictor loads.

On a GPU box, ``--workers N`` draws the composites in N processes (a step's batch is the same
whatever N is: it is seeded by the step) and the forward passes run under bf16 autocast
(``--amp``, on by default, CUDA only).

This module is the command line; the settings are ``training/train_config.py``, the batches
``training/batches.py`` and the stages ``training/trainer.py`` (their names are importable from here).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Optional, Sequence

from .training.batches import BatchSource
from .training.train_config import STAGES, TrainConfig
from .training.trainer import Trainer

__all__ = ["main", "parse_args", "STAGES", "TrainConfig", "BatchSource", "Trainer"]


def parse_args(argv: Optional[Sequence[str]]) -> TrainConfig:
    ap = argparse.ArgumentParser(prog="clickmatte-train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="JSON file with TrainConfig fields (flags override it)")
    for f in fields(TrainConfig):
        t = type(f.default)
        if t is bool:
            ap.add_argument(f"--{f.name.replace('_', '-')}", type=lambda s: s.lower() in ("1", "true", "yes"), default=None)
        else:
            ap.add_argument(f"--{f.name.replace('_', '-')}", type=t, default=None)
    a = vars(ap.parse_args(argv))
    cfg = TrainConfig.from_file(a.pop("config")) if a.get("config") else TrainConfig()
    a.pop("config", None)
    for k, v in a.items():
        if v is not None:
            setattr(cfg, k, v)
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> int:
    cfg = parse_args(argv)
    Trainer(cfg).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
