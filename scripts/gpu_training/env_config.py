"""The TrainConfig both GPU scripts start from: the recipe's fixed shares, paths and sizes from the environment."""
import os
from dataclasses import replace

from clickmatte.model.train import TrainConfig


def env_config(**fixed) -> TrainConfig:
    """DATA, BACKGROUNDS, CACHE, SIZE, BATCH, WORKERS, LR, DEVICE, MODEL, P_ITER, ITER_ROUNDS, P_NATIVE, AMP (0: fp32
    instead of bf16 autocast) from the environment; ``fixed`` on top."""
    cfg = TrainConfig(
        data=os.environ.get("DATA", "/tmp/data/comp1k_crops"), backgrounds=os.environ.get("BACKGROUNDS", "gpu/pack/bg"),
        cache_dir=os.environ.get("CACHE", "/tmp/cache"), pretrained=False,
        size=int(os.environ.get("SIZE", "320")), batch=int(os.environ.get("BATCH", "32")),
        workers=int(os.environ.get("WORKERS", "12")), lr=float(os.environ.get("LR", "4e-4")),
        p_iterative=float(os.environ.get("P_ITER", "0.5")),
        iterative_rounds=int(os.environ.get("ITER_ROUNDS", "2")), p_coarse_native=float(os.environ.get("P_NATIVE", "0")),
        p_soft_clicks=0.5, p_synth_obj=0.35, p_see_through=0.3, p_camouflage=0.3, p_parts=0.6,
        device=os.environ.get("DEVICE", "cuda"), model=os.environ.get("MODEL", "clickmatte-lite0"),
        ckpt_every=10**9, val_every=10**9, amp=os.environ.get("AMP", "1") == "1",
    )
    return replace(cfg, **fixed)
