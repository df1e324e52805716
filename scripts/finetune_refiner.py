"""Fine-tune a checkpoint's refiner on the predictor's own coarse states (``model/training/refiner_tuning.py``).

    .venv/bin/python scripts/finetune_refiner.py --data ../shared/data/comp1k_crops \\
        --checkpoint model/weights/clickmatte_lite0.pt --out /tmp/refined.pt --steps 1000

Harvests patches from the training crops (the dev split is never used) with the coarse pass at
each ``--working-sizes`` (512 = the crops' own size, 160 = half: the regime of a photo larger
than the working size), holds out every ``--val-every``-th crop to report progress on, trains
the refiner and saves the whole checkpoint (fp16) with the fine-tuning recorded in its meta.

Cost on the 2-core CPU: harvesting all 355 training crops takes ~15 min per working size and the
pool (56 k patches) holds ~20 GB in memory at its peak; ``--limit`` takes fewer crops. One step
(batch 48) takes ~1.5 s. The runs made with it are in ``model/weights/HISTORY.md``.

On a GPU box: ``--device cuda`` harvests and trains there; ``--pool FILE`` keeps the harvested
patches (``.npz``, uncompressed) so that several fine-tunes can share one harvest, and
``--best-out`` also saves the weights of the evaluation step with the lowest held-out SAD.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from clickmatte.model.evaluation.eval_data import find_pairs, load_pair
from clickmatte.model.inference.predictor import Predictor
from clickmatte.model.training.refiner_tuning import PatchPool, finetune, harvest, patch_gain
from clickmatte.model.network.registry import load_checkpoint, save_checkpoint
from clickmatte.model.training.splits import train_names


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="comp1k_crops-style folder with image/ and alpha/")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--l2-weight", type=float, default=1.0)
    ap.add_argument("--working-sizes", default="512,160", help="coarse-pass sizes to harvest at, comma-separated")
    ap.add_argument("--val-every", type=int, default=5, help="every N-th training crop is held out")
    ap.add_argument("--limit", type=int, help="only the first N training crops")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--cosine", action="store_true", help="decay the learning rate to 0 over --steps")
    ap.add_argument("--eval-every", type=int, help="held-out evaluation every N steps (default: steps / 5)")
    ap.add_argument("--pool", help="harvested patches, one .npz per working size (comma-separated): "
                    "loaded where the file exists, else harvested and saved there")
    ap.add_argument("--best-out", help="also save the weights of the evaluation with the lowest held-out SAD")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = load_checkpoint(a.checkpoint)
    sizes = [int(s) for s in a.working_sizes.split(",") if s.strip()]
    t0 = time.time()
    pool, n_crops = _pool(a, model, sizes, t0)
    held = pool.group % max(1, a.val_every) == 0
    train, val = pool.subset(np.where(~held)[0]), pool.subset(np.where(held)[0])
    del pool
    model.refiner.to(a.device)
    print(f"{len(train)} training patches, {len(val)} held out; before: {patch_gain(model.refiner, val)}", flush=True)
    best: dict = {}

    def keep_best(step: int, gain: dict[str, float]) -> None:
        if not best or gain["sad"] < best["gain"]["sad"]:
            best.update(step=step, gain=gain, state=copy.deepcopy(model.refiner.state_dict()))

    losses = finetune(model.refiner, train, a.steps, lr=a.lr, batch=a.batch, l2_weight=a.l2_weight, seed=a.seed,
                      log_every=a.eval_every or max(1, a.steps // 5), val=val, device=a.device, cosine=a.cosine,
                      on_log=keep_best)
    model.refiner.cpu()
    run = {
        "from": str(a.checkpoint), "steps": a.steps, "lr": a.lr, "batch": a.batch, "cosine": a.cosine,
        "l2_weight": a.l2_weight, "working_sizes": sizes, "train_crops": n_crops, "held_out_every": a.val_every,
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
    }
    meta = dict(model.meta)
    meta["refiner_finetune"] = {**run, "held_out_gain": patch_gain(model.refiner, val)}
    save_checkpoint(model, a.out, meta=meta, half=True)
    print(f"wrote {a.out} ({time.time() - t0:.0f} s)", flush=True)
    if a.best_out and best:
        model.refiner.load_state_dict(best["state"])
        meta["refiner_finetune"] = {**run, "steps": best["step"], "held_out_gain": best["gain"]}
        save_checkpoint(model, a.best_out, meta=meta, half=True)
        print(f"wrote {a.best_out} (step {best['step']}: {best['gain']})", flush=True)
    return 0


def _pool(a: argparse.Namespace, model, sizes: list[int], t0: float) -> tuple[PatchPool, int]:
    """The patches of every working size: each loaded from its ``--pool`` file if that exists,
    else harvested (and saved there). A pool file belongs to the checkpoint and data it was
    harvested with: nothing checks that a loaded one matches."""
    files = [f.strip() for f in (a.pool or "").split(",") if f.strip()]
    if files and len(files) != len(sizes):
        raise SystemExit(f"--pool needs one file per working size ({len(sizes)}), got {len(files)}")
    if any(not f.endswith(".npz") for f in files):
        raise SystemExit(f"--pool files must end in .npz (numpy would add it on saving): {', '.join(files)}")
    data = None
    pools = []
    for i, size in enumerate(sizes):
        if files and Path(files[i]).is_file():
            with np.load(files[i]) as z:
                pools.append(PatchPool(z["x"], z["gt"], z["rank"], z["group"]))
            print(f"loaded {len(pools[-1])} patches of working size {size} from {files[i]}", flush=True)
            continue
        if data is None:
            pairs, _ = find_pairs(Path(a.data))
            names = set(train_names([p.name for p in pairs]))
            pairs = [p for p in pairs if p.name in names][: a.limit]
            if not pairs:
                raise SystemExit(f"no training crops in {a.data}")
            data = [load_pair(p) for p in pairs]
        pred = Predictor(model=model, device=a.device, working_size=size)
        pools.append(harvest(pred, data, seed=a.seed))
        print(f"harvested {len(pools[-1])} patches at working size {size} ({time.time() - t0:.0f} s)", flush=True)
        if files:
            p = pools[-1]
            np.savez(files[i], x=p.x, gt=p.gt, rank=p.rank, group=p.group)
    n_crops = max(int(p.group.max()) + 1 for p in pools)
    pool = PatchPool(*(np.concatenate([getattr(p, f) for p in pools]) for f in ("x", "gt", "rank", "group")))
    return pool, n_crops  # the per-size pools go when this returns


if __name__ == "__main__":
    sys.exit(main())
