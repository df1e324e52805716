"""Time-boxed training run on the GPU box: probe step times, size the stages to the budget, train, export to $OUT."""
import json
import os
import time
from dataclasses import replace
from pathlib import Path

T0 = time.time()
BUDGET = float(os.environ.get("BUDGET_S", "450"))  # seconds for everything after this point
OUT = Path(os.environ.get("OUT", "/tmp/out"))
OUT.mkdir(parents=True, exist_ok=True)
import torch
from clickmatte.model.train import Trainer
from env_config import env_config

base = env_config(init="model/weights/clickmatte_lite0.pt")


def timed(tr, stage, n, skip):
    tr.begin_stage(stage)
    items = tr.stage_items(stage, 0, n)
    t = None
    for i in range(n):
        if i == skip:
            if tr.device.type == "cuda":
                torch.cuda.synchronize()
            t = time.time()
        tr.train_step(i, n, next(items))
    if tr.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.time() - t) / (n - skip)


probe = Trainer(replace(base, out="/tmp/probe"))
tm = timed(probe, "matting", 50, 20)
tu = timed(probe, "uncertainty", 16, 6)
tref = timed(probe, "refiner", 16, 6)
del probe
print(f"probe: matting {tm*1000:.1f} ms/step, uncertainty {tu*1000:.1f}, refiner {tref*1000:.1f} "
      f"({time.time()-T0:.0f} s in)", flush=True)
left = BUDGET - (time.time() - T0) - 45  # init, validations, export
n_u = int(min(400, 0.06 * left / tu))
n_r = int(min(800, 0.12 * left / tref))
n_m = int(max(50, (left - n_u * tu - n_r * tref) / tm * 0.9))
cfg = replace(base, out=str(OUT / "run"), steps_matting=n_m, steps_uncertainty=n_u, steps_refiner=n_r,
              val_every=max(1, n_m // 3), export=str(OUT / "ckpt.pt"))
print("plan:", json.dumps({"matting": n_m, "uncertainty": n_u, "refiner": n_r, "batch": cfg.batch, "size": cfg.size,
                           "lr": cfg.lr}), flush=True)
tr = Trainer(cfg)
print("val before:", tr.validate(), flush=True)
tr.run()
(OUT / "history.json").write_text(json.dumps(tr.history))
(OUT / "run" / "state.pt").unlink(missing_ok=True)
print(f"done in {time.time()-T0:.0f} s", flush=True)
