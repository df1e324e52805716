"""What the daemon's request queue holds: :class:`Incoming` (an admitted request: envelope, decoded message,
bytes held) and :class:`RefineJob` (the rest of a refine that runs in steps), together :data:`Entry`."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, List, Optional, Union

from clickmatte.plugin.protocol import Message

from .engine import RefinePlan
from .sessions import Session


@dataclass(eq=False)
class Incoming:
    """One admitted request: the routing envelope, the decoded message and the bytes it holds."""

    envelope: List[bytes]
    msg: Message
    nbytes: int
    received: float

    @property
    def session(self) -> Optional[str]:
        return getattr(self.msg.request, "session", None)

    @property
    def id(self) -> Any:
        return self.msg.id


@dataclass(eq=False)
class RefineJob:
    """The rest of a refine that did not finish in one step; queued again behind the other requests."""

    item: Incoming
    session: Session
    plan: RefinePlan
    started: float = field(default_factory=time.perf_counter)

    @property
    def envelope(self) -> List[bytes]:
        return self.item.envelope

    @property
    def nbytes(self) -> int:
        return self.item.nbytes

    @property
    def id(self) -> Any:
        return self.item.id

    @property
    def msg(self) -> Message:
        return self.item.msg


Entry = Union[Incoming, RefineJob]


def entry_session(e: Entry) -> Optional[str]:
    return e.item.session if isinstance(e, RefineJob) else e.session
