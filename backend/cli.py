"""``clickmatte``: the command-line main job.

``clickmatte matte IMAGE (--fg X,Y ... --bg X,Y ... | --clicks FILE) [--refine-top-n N]
[--endpoint E] --out DIR`` mattes one image through the daemon and writes into DIR:

- ``alpha.png``: 8-bit alpha (0 = background, 255 = foreground);
- ``uncertainty.png``: the uncertainty map colour-mapped (dark = sure, bright = unsure);
- ``cutout.png``: RGBA cut-out whose colours are the estimated foreground colours
  (pymatting's ``estimate_foreground_ml``), so no background halo remains at soft edges;
- ``preview.png``: input with clicks | alpha | uncertainty | cut-out over a checkerboard.

The clicks file is ``{"IMAGE_NAME.png": [{"x": .., "y": .., "label": "fg"|"bg"}, ...]}`` or a bare
list. The daemon at ``--endpoint`` is used when it answers quickly; otherwise one is started for
this call and stopped afterwards. ``clickmatte status [--endpoint E]`` shows what a daemon reports.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from clickmatte.plugin.client import ClientError
from clickmatte.plugin.protocol import DEFAULT_ENDPOINT

from .embedded import DaemonStartError, daemon_for


def parse_point(text: str, label: str) -> Dict[str, Any]:
    """``"X,Y"`` -> ``{"x": X, "y": Y, "label": label}``; ValueError if malformed."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"a point is X,Y (e.g. 120,80), got {text!r}")
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"a point is X,Y with numbers, got {text!r}") from None
    return {"x": x, "y": y, "label": label}


def load_clicks_file(path: Path, image_name: str) -> List[Dict[str, Any]]:
    """Clicks for ``image_name`` from a JSON file (a dict by image file name, or a bare list)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read clicks file {path}: {exc}") from None
    if isinstance(data, dict):
        if image_name not in data:
            raise ValueError(f"{path} has no clicks for {image_name!r} (it has: {', '.join(sorted(data)) or 'none'})")
        data = data[image_name]
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise ValueError(f"{path}: expected a list of {{\"x\", \"y\", \"label\"}} objects")
    out = []
    for i, c in enumerate(data):
        if c.get("label") not in ("fg", "bg") or not all(isinstance(c.get(k), (int, float)) for k in ("x", "y")):
            raise ValueError(f"{path}: click {i} must be {{\"x\": number, \"y\": number, \"label\": \"fg\"|\"bg\"}}")
        out.append({"x": c["x"], "y": c["y"], "label": c["label"]})
    return out


def cutout_rgba(rgb: np.ndarray, alpha: np.ndarray) -> tuple:
    """``(H, W, 3)`` uint8 + ``(H, W)`` float alpha -> (``(H, W, 4)`` uint8 RGBA cut-out, ``(H, W, 3)`` float
    foreground in 0..255) with foreground colours estimated by pymatting (multi-level, no halo)."""
    from pymatting import estimate_foreground_ml

    fg = estimate_foreground_ml(rgb.astype(np.float64) / 255.0, alpha.astype(np.float64))
    fg = np.clip(fg * 255.0, 0.0, 255.0)
    rgba = np.dstack([np.rint(fg).astype(np.uint8), np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)])
    return rgba, fg


def matte(args: argparse.Namespace) -> int:
    from PIL import Image

    from clickmatte.model.visualize import colorize_uncertainty, preview

    if args.clicks is not None and (args.fg or args.bg):
        raise ValueError("give either --clicks FILE or --fg/--bg points, not both")
    try:
        img = Image.open(args.image)
        rgb = np.asarray(img.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read image {args.image}: {exc}") from None
    if args.clicks is not None:
        clicks = load_clicks_file(args.clicks, args.image.name)
    else:
        clicks = [parse_point(p, "fg") for p in args.fg or []] + [parse_point(p, "bg") for p in args.bg or []]
    if not clicks:
        raise ValueError("no clicks: give --fg X,Y (and --bg X,Y) or --clicks FILE")
    if args.refine_top_n < 0:
        raise ValueError(f"--refine-top-n must be >= 0, got {args.refine_top_n}")
    h, w = rgb.shape[:2]
    say = (lambda m: print(f"clickmatte: {m}", file=sys.stderr)) if not args.quiet else None
    daemon_args = ["--device", args.device, "--log-level", "WARNING"]
    if args.checkpoint is not None:
        daemon_args += ["--checkpoint", str(args.checkpoint)]
    with daemon_for(args.endpoint, probe_ms=args.probe_ms, timeout_ms=args.timeout_ms, spawn=not args.no_spawn,
                    daemon_args=daemon_args, say=say) as client:
        opened = client.open(np.ascontiguousarray(rgb), w, h, 3, "uint8", "RGB")
        try:
            m = client.predict(opened.session, clicks, alpha_dtype="uint16")
            unc = np.frombuffer(m.uncertainty or b"", np.uint8).reshape(h, w)
            alpha_buf, patches = m.alpha, []
            if args.refine_top_n > 0:
                r = client.refine(opened.session, top_n=args.refine_top_n, alpha_dtype="uint16")
                alpha_buf, patches = r.alpha, r.patches
        finally:
            client.close(opened.session)
    alpha = np.frombuffer(alpha_buf, "<u2").reshape(h, w).astype(np.float32) / 65535.0
    sigma = unc.astype(np.float32) / 255.0 * m.uncertainty_scale
    rgba, fg = cutout_rgba(rgb, alpha)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)).save(out / "alpha.png")
    Image.fromarray(colorize_uncertainty(unc)).save(out / "uncertainty.png")
    Image.fromarray(rgba, "RGBA").save(out / "cutout.png")
    Image.fromarray(preview(rgb, alpha, sigma, clicks, foreground=fg)).save(out / "preview.png")
    print(f"wrote {out}/alpha.png, uncertainty.png, cutout.png, preview.png "
          f"({w}x{h}, {len(clicks)} clicks, {len(patches)} patches refined)")
    return 0


def status(args: argparse.Namespace) -> int:
    with daemon_for(args.endpoint, probe_ms=args.probe_ms, spawn=False) as client:
        info = client.hello()
    print(json.dumps({"endpoint": args.endpoint, "protocol": info.protocol, "server": info.server,
                      "device": info.device, "model": info.model, "limits": info.limits}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="clickmatte", description="Click-guided image matting.")
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("matte", help="matte one image from clicks", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("image", type=Path)
    m.add_argument("--fg", action="append", metavar="X,Y", help="foreground point (repeatable)")
    m.add_argument("--bg", action="append", metavar="X,Y", help="background point (repeatable)")
    m.add_argument("--clicks", type=Path, help="JSON clicks file")
    m.add_argument("--refine-top-n", type=int, default=8, help="patches to refine at full resolution (8; 0 = none)")
    m.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help=f"daemon endpoint ({DEFAULT_ENDPOINT})")
    m.add_argument("--out", type=Path, required=True, help="output folder")
    m.add_argument("--no-spawn", action="store_true", help="fail instead of starting a daemon when none answers")
    m.add_argument("--device", default="auto", help="device of a daemon started for this call (auto)")
    m.add_argument("--checkpoint", type=Path, default=None, help="checkpoint of a daemon started for this call")
    m.add_argument("--probe-ms", type=int, default=1500, help="how long to wait for a running daemon (1500)")
    m.add_argument("--timeout-ms", type=int, default=300000, help="per-request timeout (300000)")
    m.add_argument("--quiet", action="store_true")
    m.set_defaults(func=matte)
    s = sub.add_parser("status", help="show what the daemon at --endpoint reports")
    s.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    s.add_argument("--probe-ms", type=int, default=3000)
    s.set_defaults(func=status)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, ClientError, DaemonStartError) as exc:
        print(f"clickmatte: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
