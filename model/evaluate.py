"""``clickmatte-eval``: measure click-guided matting like a matting paper.

For every ``image/NAME.png`` + ``alpha/NAME.png`` pair in a data folder and every engine
(the network ``net`` and/or the ``classical`` GrabCut + closed-form pipeline), clicks are
added one at a time and each prediction is scored on the whole image with SAD, MSE, Grad and
Conn (:mod:`clickmatte.model.evaluation.metrics`), plus the seconds it took. Clicks come from a JSON file
(``{"NAME.png": [{"x", "y", "label"}, ...]}``, the first k for k = 1..max) or from the
error-driven simulator (:func:`clickmatte.model.evaluation.click_simulator.next_click`), which sees the
previous prediction; the network also gets it as ``prev_alpha`` (RITM-style;
``--no-prev-alpha`` turns that off). ``--engine net,classical`` runs both engines on the same
images with the same click protocol and puts them side by side in one report.

NoC@MSE10: the number of clicks after which MSE <= 10e-3, capped at 10 (10 when never
reached). To measure it the simulator goes on past ``--max-clicks`` up to 10 clicks (only MSE
is computed for those extra clicks; the per-click table stops at ``--max-clicks``). With a
clicks file the clicks it holds are the limit. When the simulator finds no error left, or the
file has no more clicks, the last prediction stands for the remaining click counts
(``"carried": true`` in the report, no time counted).

Does a click fix what it points at? For every click k = 2..``--max-clicks`` the report holds
the mean absolute error within 30 px of it before and after it (``"local"``,
:func:`clickmatte.model.evaluation.metrics.local_change`); the summary gives the means and the share of
clicks after which that error went up.

Outputs in ``--out``: ``report.json`` (every number), ``summary.md``, ``sad_vs_clicks.png``
and ``worst.png`` (see :mod:`clickmatte.model.evaluation.eval_report`).

``--masks DIR`` (instead of ``--data``) scores binary object masks as interactive segmentation
(IoU at k clicks, NoC@85 / NoC@90, cap 20): :mod:`clickmatte.model.evaluation.mask_eval`.

This module is the command line; the rest lives in :mod:`clickmatte.model.evaluation`: the files are read
by ``eval_data``, the engines are in ``eval_engines``, the click loop in ``eval_loop``, the refinement study
in ``refine_study`` and the report (and ``--compare`` merging) in ``eval_report``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from .inference.config import add_predictor_arguments, predictor_config_from_args
from .evaluation.eval_engines import ENGINES
from .evaluation.eval_loop import EvalConfig, run_evaluation

MASK_NOC_CAP = 20  # the mask mode's default cap (evaluation.mask_eval), the interactive-segmentation standard


# -- command line -----------------------------------------------------------------------------
def _read_names_file(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read names file {path}: {exc}") from exc
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clickmatte-eval",
        description=(
            "Evaluate click-guided matting on DIR/image/NAME.png + DIR/alpha/NAME.png: SAD, MSE, Grad, Conn "
            "(whole image) per number of clicks, seconds per prediction, and NoC@MSE10 (clicks until "
            "MSE <= 10e-3, capped at 10; the simulator keeps clicking past --max-clicks up to 10 for it). "
            "Writes report.json, summary.md, sad_vs_clicks.png and worst.png to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="folder with image/ and alpha/ (8-bit gray alpha PNGs): matting mode")
    src.add_argument("--masks", metavar="DIR",
                     help="folder with image/ and mask/ (8-bit binary object masks): mask mode, scored as "
                          "interactive segmentation (IoU at k clicks, NoC@85/90 with the standard simulator up to "
                          f"--max-clicks, default {MASK_NOC_CAP}; SAD on definite mask pixels; the error near each "
                          "click before and after it); see clickmatte.model.evaluation.mask_eval")
    p.add_argument("--out", required=True, help="report folder (created)")
    p.add_argument("--clicks", help='JSON {"NAME.png": [{"x","y","label"}, ...]}; the first k are used for k clicks. '
                                    "Without it clicks come from the error-driven simulator.")
    p.add_argument("--max-clicks", type=int, default=None,
                   help=f"click counts 1..N in the per-click table (default 5); with --masks the NoC cap "
                        f"(default {MASK_NOC_CAP})")
    p.add_argument("--engine", default="net",
                   help="engine(s), comma-separated: net, classical, or net,classical to put both side by side "
                        "in one report (same images, same click protocol)")
    p.add_argument("--checkpoint", help="network checkpoint (default: the shipped weights, else untrained)")
    p.add_argument("--device", default="auto", help="net engine device: auto, cpu, cuda[:N]")
    add_predictor_arguments(p)  # net engine: --working-size, --no-flip-tta, ...
    p.add_argument("--refine-top-n", type=int, default=0,
                   help="net engine: also refine the N most uncertain patches: at --max-clicks (matting mode) or "
                        "after each click up to 5 (--masks), scored beside the coarse matte (0 = off)")
    p.add_argument("--refine-random", action="store_true",
                   help="with --refine-top-n: also refine the same number of random non-overlapping patches "
                        "(the uncertainty-vs-random ablation)")
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--names-file", help="only these names (one per line, with or without .png)")
    sel.add_argument("--split", choices=["dev"], help="only the fixed dev split of comp1k_crops (clickmatte.model.training.splits)")
    p.add_argument("--limit", type=int, help="only the first N images in sorted name order (after selection)")
    p.add_argument("--compare", action="append", default=[], metavar="REPORT_DIR",
                   help="also show the engines of an earlier clickmatte-eval report of the same mode (its numbers; "
                        "repeatable), e.g. another checkpoint's. The other way to put engines side by side, "
                        "besides --engine net,classical")
    p.add_argument("--no-prev-alpha", action="store_true",
                   help="do not feed the previous prediction back to the network with each new click")
    p.add_argument("--worst", type=int, default=4, help="images per engine on the worst.png contact sheet")
    p.add_argument("--seed", type=int, default=0, help="seed for the random refinement patches")
    p.add_argument("--protocol", choices=["simulator", "fixed"], default="simulator",
                   help="with --masks: where the clicks go. simulator: the error-driven standard simulator; fixed: "
                        "fg, bg, fg, ... at the deepest points of the true regions, the same clicks whatever the "
                        "network answers, --max-clicks per image (use e.g. --max-clicks 5)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads (default: torch's own); 1 is much faster on a machine busy with other "
                        "jobs, where threads spin against each other")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    bad = [e for e in engines if e not in ENGINES]
    if not engines or bad or len(set(engines)) != len(engines):
        parser.error(f"--engine takes a comma-separated list of distinct engines from {', '.join(ENGINES)}")
    if args.max_clicks is not None and args.max_clicks < 1:
        parser.error("--max-clicks must be >= 1")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        import torch

        torch.set_num_threads(args.threads)
    if args.masks is not None:
        from .evaluation.mask_eval import main_masks

        return main_masks(parser, args, engines)
    if args.max_clicks is None:
        args.max_clicks = 5
    if args.refine_top_n < 0:
        parser.error("--refine-top-n must be >= 0")
    if args.refine_random and args.refine_top_n <= 0:
        parser.error("--refine-random needs --refine-top-n N (the number of random patches)")
    if args.protocol != "simulator":
        parser.error("--protocol applies with --masks only (matting mode: --clicks FILE gives fixed clicks)")
    names: Optional[list[str]] = None
    source = None
    try:
        if args.names_file:
            names, source = _read_names_file(args.names_file), f"file {args.names_file}"
        elif args.split == "dev":
            from .training.splits import dev_names

            names, source = dev_names(), "split dev"
        cfg = EvalConfig(
            data=args.data, out=args.out, engines=engines, clicks_file=args.clicks, max_clicks=args.max_clicks,
            checkpoint=args.checkpoint, device=args.device, predictor=predictor_config_from_args(args),
            refine_top_n=args.refine_top_n, refine_random=args.refine_random,
            names=names, names_source=source,
            limit=args.limit, worst=max(0, args.worst), seed=args.seed, feed_prev_alpha=not args.no_prev_alpha,
            compare=list(args.compare),
        )
        report = run_evaluation(cfg, progress=not args.quiet)
    except ValueError as exc:
        print(f"clickmatte-eval: error: {exc}", file=sys.stderr)
        return 2
    return _finish(report, args.out)


def _finish(report: dict, out: str) -> int:
    for s in report["skipped"]:
        print(f"skipped {s['name']}: {s['reason']}", file=sys.stderr)
    for f in report["failed"]:
        print(f"failed {f['engine']} on {f['name']}: {f['reason']}", file=sys.stderr)
    print((Path(out) / "summary.md").read_text(encoding="utf-8"))
    evaluated = sum(len(e["images"]) for e in report["engines"].values() if "merged_from" not in e)
    if evaluated == 0:
        print("clickmatte-eval: error: no image could be evaluated", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
