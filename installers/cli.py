"""``clickmatte-install``: put the ClickMatte plugin into an editor (``krita``, ``gimp``, ...).

Each target is a module with ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args, report) -> int`` (``report(line)`` prints one action). To add one, import it below
and list it in ``TARGETS``.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import gimp, krita
from .reporting import InstallError, Reporter

TARGETS = {krita.NAME: krita, gimp.NAME: gimp}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clickmatte-install",
        description="Install (or --uninstall) the ClickMatte plugin into an image editor's profile.",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    sub = parser.add_subparsers(dest="target", metavar="EDITOR")
    sub.required = True
    for name, module in TARGETS.items():
        p = sub.add_parser(name, help=module.HELP, description=(module.__doc__ or "").split("\n\n")[0])
        module.add_arguments(p)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    report = Reporter(quiet=args.quiet)
    try:
        return TARGETS[args.target].run(args, report)
    except InstallError as exc:
        print(f"clickmatte-install: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
