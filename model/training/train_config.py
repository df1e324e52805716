"""The settings of ``clickmatte-train`` (:class:`TrainConfig`, one field per command-line flag; ``--config``
reads them from JSON) and the names of its three :data:`STAGES`."""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from ..inference.clicks import DEFAULT_RADIUS


STAGES = ("matting", "uncertainty", "refiner")


@dataclass
class TrainConfig:
    data: str = "../shared/data/comp1k_crops"
    backgrounds: str = "../shared/data/backgrounds"
    out: str = "runs/train"
    export: str = ""
    model: str = "clickmatte-lite0"
    size: int = 256
    batch: int = 8
    steps_matting: int = 1500
    steps_uncertainty: int = 200
    steps_refiner: int = 200
    lr: float = 5e-4
    lr_encoder_scale: float = 0.5
    weight_decay: float = 1e-4
    w_gradient: float = 1.0
    w_l1: float = 1.0
    w_click: float = 4.0
    refine_lambda: float = 1.0
    patches_per_image: int = 4
    radius: float = DEFAULT_RADIUS
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    ckpt_every: int = 50
    val_every: int = 250
    val_images: int = 24
    limit_train: int = 0
    pretrained: bool = True
    cache_dir: str = "runs/cache"
    init: str = ""  # start from this checkpoint's weights (fine-tuning), when no state.pt exists yet
    p_iterative: float = 0.0  # share of matting batches with RITM-style clicks on the net's own errors
    p_soft_clicks: float = 0.0  # share of samples (and of iterative clicks) placed like the evaluation simulator
    p_synth_obj: float = 0.0  # share of composited layers that are synthetic solid objects (synthetic.synth_object)
    coarse_scale_min: float = 0.5  # uncertainty/refiner stages: the coarse net runs at a random scale in
    coarse_scale_max: float = 1.0  # [min, max] of the sample (as at inference on images above the working size)
    p_coarse_native: float = 0.0  # uncertainty/refiner stages: share of steps whose coarse net runs at full size
    iterative_rounds: int = 2  # RITM-style batches add 1..N corrective clicks, each on the net's own answer
    p_fixed_clicks: float = 0.0  # share of those added clicks placed blind to the error: deepest inside the true fg or bg
    p_iterative_refiner: float = 0.0  # share of refiner batches whose coarse alpha comes after RITM-style clicks
    p_see_through: float = 0.0  # share of synthetic objects that are nets, lace or veils (synthetic.see_through)
    p_camouflage: float = 0.0  # share of composites on a background recoloured to the target's colours (synthetic.camouflage)
    p_zoom: float = 0.0  # share of single-object samples magnified 1.6-2.6x (objects larger than the frame)
    p_parts: float = 0.0  # share of synthetic objects made of 2-3 unlike-looking parts (synthetic.part_masks)
    real_objects: str = ""  # folder of real photos with object masks (image/, mask/), e.g. real_objects/duts_tr
    p_real: float = 0.0  # share of matting/uncertainty samples that are whole real photos with a mask target
    real_band: int = 3  # px on each side of a mask's edge (and the padding) left out of the loss
    real_limit: int = 0  # use only the first N real photos (0: all)
    w_mask: float = 1.0  # weight of the mask loss (BCE + L1 off the edge band) of real-photo samples
    workers: int = 0  # processes drawing composites (0: in the training process)
    amp: bool = True  # bf16 autocast of the forward passes on CUDA

    @classmethod
    def from_file(cls, path: str) -> "TrainConfig":
        d = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        bad = set(d) - known
        if bad:
            raise ValueError(f"unknown config keys in {path}: {sorted(bad)}")
        return cls(**d)
