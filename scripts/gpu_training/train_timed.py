"""Time-boxed continuation on the GPU box: stages run for fixed numbers of seconds with a cosine
schedule over time (no probe), in the order ``PLAN`` gives, exporting to $OUT where it says so.

``PLAN`` is a comma-separated list of ``STAGE:SECONDS[:LR]`` and ``export:NAME`` items, e.g.
``refiner:170,export:v5r,matting:170:2e-4,uncertainty:30,refiner:60,export:g3``; without it,
``matting:$T_MAT,uncertainty:$T_UNC,refiner:$T_REF,export:ckpt``. Every stage prints its step
rate and how much of its time went to waiting for batches (the data workers)."""
import json
import os
import time
from pathlib import Path

T0 = time.time()
OUT = Path(os.environ.get("OUT", "/tmp/out"))
OUT.mkdir(parents=True, exist_ok=True)
import torch
from clickmatte.model.train import STAGES, BatchSource, Trainer
from env_config import env_config

default_plan = (f"matting:{os.environ.get('T_MAT', '150')},uncertainty:{os.environ.get('T_UNC', '15')},"
                f"refiner:{os.environ.get('T_REF', '25')},export:ckpt")
plan = [item.split(":") for item in os.environ.get("PLAN", default_plan).split(",")]
for item in plan:
    if item[0] != "export" and (item[0] not in STAGES or len(item) not in (2, 3)):
        raise ValueError(f"bad PLAN item {':'.join(item)!r}")
cfg = env_config(init=os.environ.get("INIT", "gpu/ckpt_g1.pt"), out="/tmp/run2", seed=int(os.environ.get("SEED", "2")),
                 workers=int(os.environ.get("WORKERS", "13")), lr=float(os.environ.get("LR", "3e-4")))
print("config:", json.dumps({k: getattr(cfg, k) for k in ("init", "batch", "size", "workers", "lr", "p_iterative",
                                                          "iterative_rounds", "p_coarse_native", "seed")}), flush=True)
base_lr = cfg.lr  # the Trainer's config is this object: stages set their own lr on it
tr = Trainer(cfg)
print(f"init {time.time()-T0:.0f} s", flush=True)
t = time.time()
src = BatchSource(tr.sampler, cfg, "matting")
for i in range(2):
    src[i]
print(f"one batch of {cfg.batch} drawn in this process: {(time.time()-t)/2*1000:.0f} ms", flush=True)

for item in plan:
    if item[0] == "export":
        tr.export(str(OUT / f"{item[1]}.pt"))
        (OUT / f"{item[1]}_history.json").write_text(json.dumps(tr.history))
        print(f"exported {item[1]}.pt at {time.time()-T0:.0f} s", flush=True)
        continue
    stage, secs = item[0], float(item[1])
    tr.cfg.lr = float(item[2]) if len(item) == 3 else base_lr
    tr.begin_stage(stage)
    items = tr._items(stage, 0, 10**7)
    t0, i, wait = time.time(), 0, 0.0
    while (el := time.time() - t0) < secs:
        frac = el / secs
        total = max(i + 1, int(i / frac)) if i >= 30 else 10**6
        tw = time.time()
        batch = next(items)
        wait += time.time() - tw
        logs = tr.train_step(i, total, batch)
        i += 1
        if i % 10 == 0:
            tr.history.append({"stage": stage, "step": i, **logs})
        if i % 100 == 0:
            print(stage, i, f"{el:.0f} s", {k: round(v, 4) for k, v in logs.items()}, flush=True)
    if tr.device.type == "cuda":
        torch.cuda.synchronize()
    el = time.time() - t0
    tr.step = i
    del items
    print(f"{stage}: {i} steps in {el:.0f} s ({i/el:.2f}/s, lr {tr.cfg.lr:g}), {wait:.0f} s waiting for batches",
          flush=True)
    if stage == "matting":
        v = tr.validate()
        tr.history.append({"stage": stage, "step": i, **v})
        print("val:", v, flush=True)
print(f"done in {time.time()-T0:.0f} s", flush=True)
