"""Session cache: images by content digest and sessions by unguessable id, LRU by count and bytes.

An :class:`ImageEntry` holds one ``(H, W, 3)`` uint8 RGB image (shared by every session opened on
the same digest). A :class:`Session` holds its last full-resolution results: ``alpha`` and
``sigma``, ``(H, W)`` float32 (8 bytes per pixel together), the clicks of its last prediction and
the previous alpha that prediction was given (``(H, W)`` uint8, 1 byte per pixel). The cache
counts image bytes once per digest plus each session's result bytes, and evicts least-recently-used
entries (unused images first, then sessions) until it is within ``max_sessions`` and ``max_bytes``.
"""
from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

from clickmatte.plugin.protocol import TOO_LARGE, UNKNOWN_SESSION, ProtocolError


@dataclass(eq=False)
class ImageEntry:
    """One cached image: ``rgb`` ``(H, W, 3)`` uint8; ``work`` caches the model's working-size input."""

    digest: str
    rgb: np.ndarray
    work: Optional[Any] = None

    @property
    def nbytes(self) -> int:
        return int(self.rgb.nbytes)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


@dataclass(eq=False)
class Session:
    """A client's matting session on one image; ``alpha``/``sigma`` are None until the first predict."""

    id: str
    image: ImageEntry
    alpha: Optional[np.ndarray] = None
    sigma: Optional[np.ndarray] = None
    clicks: Optional[Tuple[Tuple[float, float, str], ...]] = None  # the clicks of the last prediction
    prev_in: Optional[np.ndarray] = None  # the previous alpha that prediction was given (uint8), if any
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def state_bytes(self) -> int:
        return sum(int(a.nbytes) for a in (self.alpha, self.sigma, self.prev_in) if a is not None)


def session_bytes_per_pixel() -> int:
    """Cache bytes one session needs per pixel: image RGB (3) + alpha and sigma float32 (8) + the
    previous alpha its last prediction was given (uint8, 1)."""
    return 3 + 8 + 1


class SessionCache:
    """LRU store of images (by digest) and sessions (by id). Not thread-safe (the daemon is one loop)."""

    def __init__(self, max_sessions: int, max_bytes: int) -> None:
        if max_sessions < 1 or max_bytes < 1:
            raise ValueError("max_sessions and max_bytes must be >= 1")
        self.max_sessions = int(max_sessions)
        self.max_bytes = int(max_bytes)
        self.images: "OrderedDict[str, ImageEntry]" = OrderedDict()
        self.sessions: "OrderedDict[str, Session]" = OrderedDict()
        self.evicted_sessions = 0

    # -- accounting -------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.images.values()) + sum(s.state_bytes for s in self.sessions.values())

    def check_fits(self, height: int, width: int) -> None:
        """Raise ProtocolError(too_large) if one session on an image of this size cannot fit at all."""
        need = height * width * session_bytes_per_pixel()
        if need > self.max_bytes:
            raise ProtocolError(
                f"a {width}x{height} image needs {need / 2**20:.0f} MiB of session cache; the daemon has "
                f"{self.max_bytes / 2**20:.0f} MiB (--max-cache-mb)", TOO_LARGE)

    def _referenced(self) -> set:
        return {id(s.image) for s in self.sessions.values()}

    def evict(self, keep: Optional[Session] = None) -> None:
        """Drop LRU entries until within limits; never ``keep`` (the session being served) or its image."""
        while True:
            over_count = len(self.sessions) > self.max_sessions
            over_bytes = self.nbytes > self.max_bytes
            refs = self._referenced()
            unused = [d for d, e in self.images.items() if id(e) not in refs and (keep is None or e is not keep.image)]
            if len(unused) > self.max_sessions:  # bound unused images by count too
                del self.images[unused[0]]
                continue
            if not (over_count or over_bytes):
                return
            if over_bytes and unused:
                del self.images[unused[0]]
                continue
            victims = [sid for sid, s in self.sessions.items() if s is not keep]
            if not victims:
                return
            self.sessions.pop(victims[0])
            self.evicted_sessions += 1

    # -- images -----------------------------------------------------------------------------
    def find_image(self, digest: str) -> Optional[ImageEntry]:
        e = self.images.get(digest)
        if e is not None:
            self.images.move_to_end(digest)
        return e

    def add_image(self, digest: str, rgb: np.ndarray) -> ImageEntry:
        e = self.images.get(digest)
        if e is None:
            e = ImageEntry(digest, rgb)
            self.images[digest] = e
        self.images.move_to_end(digest)
        return e

    # -- sessions ---------------------------------------------------------------------------
    def create_session(self, image: ImageEntry) -> Session:
        s = Session(secrets.token_urlsafe(24), image)
        self.sessions[s.id] = s
        self.images.move_to_end(image.digest)
        self.evict(keep=s)
        return s

    def get(self, session_id: str) -> Session:
        """The session (marked most recently used); ProtocolError(unknown_session) if absent or evicted."""
        s = self.sessions.get(session_id)
        if s is None:
            raise ProtocolError(f"unknown session {session_id[:16]!r}... (closed, evicted, or from another daemon "
                                "run): open the image again", UNKNOWN_SESSION)
        self.sessions.move_to_end(session_id)
        if s.image.digest in self.images:
            self.images.move_to_end(s.image.digest)
        return s

    def latest_session(self, digest: str) -> Optional[Session]:
        """The most recently used live session on the image ``digest`` (marked used again), or None."""
        for sid in reversed(self.sessions):
            if self.sessions[sid].image.digest == digest:
                return self.get(sid)
        return None

    def close(self, session_id: str) -> bool:
        return self.sessions.pop(session_id, None) is not None
