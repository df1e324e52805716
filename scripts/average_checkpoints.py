"""Weight-space average of checkpoints of one architecture (a "model soup"), saved in fp16.

    .venv/bin/python scripts/average_checkpoints.py OUT.pt A.pt:0.3 B.pt:0.7 [--note TEXT]

The last checkpoint's config and meta are kept; meta["averaged"] records the inputs and weights.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from clickmatte.model.network.registry import average_models, load_checkpoint, save_checkpoint


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("inputs", nargs="+", help="PATH:WEIGHT")
    ap.add_argument("--note", default="", help="free text stored in meta['note']")
    a = ap.parse_args(argv)
    paths, weights = [], []
    for item in a.inputs:
        path, sep, w = item.rpartition(":")
        if not sep:
            raise SystemExit(f"expected PATH:WEIGHT, got {item!r}")
        paths.append(path)
        weights.append(float(w))
    model = average_models([load_checkpoint(p) for p in paths], weights)
    meta = dict(model.meta)
    meta["averaged"] = ", ".join(f"{w:g} x {p}" for p, w in zip(paths, weights))
    if a.note:
        meta["note"] = a.note
    save_checkpoint(model, a.out, meta=meta, half=True)
    print(f"wrote {a.out}: {meta['averaged']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
