"""What an install tells the user (standard library only): :class:`Reporter` prints one line per
action; :class:`InstallError` is a problem the user must fix (the CLI prints it and exits with 1).
"""
from __future__ import annotations

import sys
from typing import List, Optional, TextIO


class InstallError(Exception):
    """A problem the user must fix; the CLI prints the message and exits with status 1."""


class Reporter:
    """Prints one line per action (to ``stream``, default stdout) and keeps them in ``lines``."""

    def __init__(self, stream: Optional[TextIO] = None, quiet: bool = False) -> None:
        self.stream = sys.stdout if stream is None else stream
        self.quiet = quiet
        self.lines: List[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(message)
        if not self.quiet:
            print(message, file=self.stream, flush=True)
