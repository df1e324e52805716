"""Time-boxed continuation on the GPU box: each stage runs for a fixed number of seconds with a cosine
schedule over time (no probe), then exports to $OUT."""
import json
import os
import time
from dataclasses import replace
from pathlib import Path

T0 = time.time()
OUT = Path(os.environ.get("OUT", "/tmp/out"))
OUT.mkdir(parents=True, exist_ok=True)
from clickmatte.model.train import Trainer
from env_config import env_config

SECS = {"matting": float(os.environ.get("T_MAT", "150")), "uncertainty": float(os.environ.get("T_UNC", "15")),
        "refiner": float(os.environ.get("T_REF", "25"))}
cfg = env_config(init=os.environ.get("INIT", "gpu/ckpt_g1.pt"), out="/tmp/run2", export=str(OUT / "ckpt.pt"), seed=2,
                 workers=int(os.environ.get("WORKERS", "13")), lr=float(os.environ.get("LR", "3e-4")))
tr = Trainer(cfg)
print(f"init {time.time()-T0:.0f} s", flush=True)
for stage, secs in SECS.items():
    tr.begin_stage(stage)
    items = tr._items(stage, 0, 10**7)
    t0, i = time.time(), 0
    while (el := time.time() - t0) < secs:
        frac = el / secs
        total = max(i + 1, int(i / frac)) if i >= 30 else 10**6
        logs = tr.train_step(i, total, next(items))
        i += 1
        if i % 10 == 0:
            tr.history.append({"stage": stage, "step": i, **logs})
        if i % 100 == 0:
            print(stage, i, f"{el:.0f} s", {k: round(v, 4) for k, v in logs.items()}, flush=True)
    tr.step = i
    del items
    print(f"{stage}: {i} steps in {secs:.0f} s", flush=True)
    if stage == "matting":
        v = tr.validate()
        tr.history.append({"stage": stage, "step": i, **v})
        print("val:", v, flush=True)
        tr.export(str(OUT / "ckpt.pt"), partial=True)
tr.export(str(OUT / "ckpt.pt"))
(OUT / "history.json").write_text(json.dumps(tr.history))
print(f"done in {time.time()-T0:.0f} s", flush=True)
