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

All or nothing: ``--out`` is checked before any model work (it must be a folder, or a place where one
can be made, that this user can write to; none of the four outputs may be an input: the image, the
clicks file or the checkpoint). The outputs are written to temporary files in DIR and renamed into
place only once all four are written; on any failure DIR is left as it was. Images: 8-bit modes are
converted to RGB, 16-bit grayscale is scaled to 8 bits (not clipped), other modes that cannot be read
as a photo (32-bit float, 32-bit integer beyond 16 bits) are refused, and so are images larger than
:data:`MAX_INPUT_PIXELS` (read from the file's header, before decoding). Every error is one line on
stderr and exit status 1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from clickmatte.plugin.client import ClientError
from clickmatte.plugin.protocol import DEFAULT_ENDPOINT, DEFAULT_TOP_N

from .config import MAX_IMAGE_MP
from .embedded import DaemonStartError, daemon_for

OUTPUT_NAMES = ("alpha.png", "uncertainty.png", "cutout.png", "preview.png")
MAX_INPUT_PIXELS = int(MAX_IMAGE_MP * 1_000_000)  # the largest --max-image-mp a daemon accepts


class OutputError(ValueError):
    """``--out`` cannot take the outputs (not a folder, not writable, would overwrite an input)."""


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_out_dir(out: Path, inputs: Sequence[Path]) -> None:
    """Raise :class:`OutputError` unless the outputs can be written into ``out`` without touching an input.

    ``out`` must be a folder (or not exist yet, below a folder); a file that this user can create
    there (a probe, removed at once) proves it writable. None of ``out/NAME`` (:data:`OUTPUT_NAMES`)
    may be one of ``inputs`` (same file, whatever the spelling) or an existing folder.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder")
    base = out if out.exists() else _nearest_existing(out)
    if not base.is_dir():
        raise OutputError(f"--out {out}: {base} is not a folder, so the output folder cannot be made there")
    try:
        fd, probe = tempfile.mkstemp(prefix=".clickmatte-probe-", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"--out {out}: cannot write into {base} ({exc.strerror or exc})") from None
    for name in OUTPUT_NAMES:
        target = out / name
        for inp in inputs:
            if _same_file(target, inp) or target.absolute().resolve() == inp.absolute().resolve():
                raise OutputError(f"--out {out} would overwrite the input {inp} with {name}: choose another folder")
        if target.is_dir():
            raise OutputError(f"--out {out}: {target} is a folder, so {name} cannot be written")


def write_outputs(out: Path, images: Mapping[str, Any]) -> None:
    """Save PIL ``images`` (name -> image) into ``out`` all or nothing.

    Each is written to a temporary file in ``out`` first; only when all are written are they renamed
    over their names (existing files are moved aside and put back if a rename fails). On failure the
    temporary files are removed, a folder made for the call is removed again, and the error raised.
    """
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    temps: Dict[str, str] = {}
    backups: Dict[str, str] = {}
    done: List[str] = []
    try:
        for name, img in images.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
            temps[name] = tmp
            with os.fdopen(fd, "wb") as f:
                img.save(f, format="PNG")
        for name, tmp in temps.items():
            target = out / name
            if target.exists():
                fd, bak = tempfile.mkstemp(prefix=f".{name}.", suffix=".bak", dir=out)
                os.close(fd)
                os.replace(target, bak)
                backups[name] = bak
            os.replace(tmp, target)
            done.append(name)
    except BaseException:
        for name in reversed(done):  # undo the renames that happened
            try:
                if name in backups:
                    os.replace(backups.pop(name), out / name)
                else:
                    os.unlink(out / name)
            except OSError:
                pass
        for bak_name, bak in list(backups.items()):  # moved aside but not yet replaced: put back
            try:
                os.replace(bak, out / bak_name)
            except OSError:
                pass
        for tmp in temps.values():
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if made:
            try:
                out.rmdir()
            except OSError:
                pass
        raise
    for bak in backups.values():
        try:
            os.unlink(bak)
        except OSError:
            pass


def read_rgb(path: Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB; ValueError (one line) for what cannot be read as such.

    16-bit grayscale (``I;16*``, and ``I`` within 0..65535) is scaled to 8 bits; 8-bit modes are converted by
    Pillow; 32-bit float, integers beyond 16 bits and images over :data:`MAX_INPUT_PIXELS` are refused.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"cannot read image {path}: it has more pixels than the limit of "
                         f"{MAX_INPUT_PIXELS / 1e6:g} MP ({str(exc).splitlines()[0][:160]})") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None
    with img:
        w, h = img.size
        if w * h > MAX_INPUT_PIXELS:
            raise ValueError(f"cannot read image {path}: {w}x{h} = {w * h / 1e6:.1f} MP is more than the limit of "
                             f"{MAX_INPUT_PIXELS / 1e6:g} MP")
        mode = img.mode
        try:
            if mode.startswith("I;16") or mode == "I":
                a = np.asarray(img)
                if a.dtype.kind == "i" or a.dtype.itemsize > 2:
                    lo, hi = int(a.min()), int(a.max())
                    if lo < 0 or hi > 65535:
                        raise ValueError(f"cannot read image {path}: mode {mode} with values {lo}..{hi} "
                                         "(only 8- and 16-bit images are supported)")
                a16 = a.astype(np.uint32)
                g = ((a16 * 255 + 32767) // 65535).astype(np.uint8)  # 65535 -> 255, rounded
                return np.ascontiguousarray(np.dstack([g, g, g]))
            if mode in ("F", "I;32", "I;32B", "I;32L") or mode.startswith("F;"):
                raise ValueError(f"cannot read image {path}: mode {mode} (32-bit) is not supported; "
                                 "save it as an 8- or 16-bit image")
            return np.ascontiguousarray(np.asarray(img.convert("RGB")))
        except ValueError as exc:
            if str(exc).startswith("cannot read image"):
                raise
            raise ValueError(f"cannot read image {path}: mode {mode}: {exc}") from None
        except OSError as exc:
            raise ValueError(f"cannot read image {path}: {exc}") from None


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
    out: Path = args.out
    inputs = [p for p in (args.image, args.clicks, args.checkpoint) if p is not None]
    check_out_dir(out, inputs)
    rgb = read_rgb(args.image)
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
    check_out_dir(out, inputs)  # again: the folder may have changed during the model work
    write_outputs(out, {
        "alpha.png": Image.fromarray(np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)),
        "uncertainty.png": Image.fromarray(colorize_uncertainty(unc)),
        "cutout.png": Image.fromarray(rgba, "RGBA"),
        "preview.png": Image.fromarray(preview(rgb, alpha, sigma, clicks, foreground=fg)),
    })
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
    m.add_argument("--refine-top-n", type=int, default=DEFAULT_TOP_N,
                   help=f"patches to refine at full resolution ({DEFAULT_TOP_N}; 0 = none)")
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
    except (ValueError, ClientError, DaemonStartError, OSError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the message
        print(f"clickmatte: error: {text}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
