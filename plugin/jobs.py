"""What the controller's work is made of: a :class:`Job` per user action, the :class:`Step` each request
in flight is sent as, and the timeouts that tell a busy daemon from a gone one (standard library only)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import List, Optional

from .host import ImageData, Point

#: a job request's own timeout: long, since the heartbeat tells a busy daemon from a gone one
JOB_TIMEOUT_S = 3600.0
#: seconds between heartbeats (``status`` requests) while a job's request is in flight
HEARTBEAT_S = 1.0
#: heartbeats in a row that say "unknown" before a request counts as lost (the daemon restarted)
LOST_AFTER = 3


class Step(Enum):
    """What a request in flight is for; a reply is handled by the step it was sent as."""

    NEW = "new"  # a job whose first request is not sent yet
    HELLO = "hello"  # connect(): the reply sets server_info
    START_HELLO = "start_hello"  # hello to a daemon we just started: ready when it answers
    STATUS = "status"  # heartbeat while a job's request is in flight (protocol 1.3)
    HEARTBEAT_HELLO = "heartbeat_hello"  # heartbeat for daemons older than 1.3
    CLOSE = "close"  # fire-and-forget
    OPEN_DIGEST = "open_digest"
    OPEN_PIXELS = "open_pixels"
    PREDICT_PREVIEW = "predict_preview"
    PREDICT_FULL = "predict_full"
    REFINE = "refine"
    FOREGROUND = "foreground"


@dataclass
class Job:
    """One user action in progress. ``kind``: preview | matte | refine_top | refine_selection."""

    kind: str
    top_n: int = 0
    generation: int = -1
    points: List[Point] = field(default_factory=list)
    step: Step = Step.NEW
    image: Optional[ImageData] = None
    digest: str = ""
    selection: Optional[bytes] = None
    retried: bool = False
    sent_prev: bool = False  # the predict in flight carries the host's mask as the previous alpha
    started: float = 0.0
    sent_at: float = 0.0
    rid: str = ""
    unknown: int = 0  # heartbeats in a row that found the daemon without our request

