"""The wire protocol's numbers and names (standard library only): the magic frame, the version, the
limits every message is checked against, ops, error codes, sample types and channel orders. The format
itself is described in ``protocol.py``."""
from __future__ import annotations

from typing import Tuple, Union

MAGIC = b"clickmatte/1"
MAGIC_PREFIX = b"clickmatte/"
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 4
PROTOCOL_VERSION = f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}"
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"

DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024 * 1024  # whole message; a 24 MP RGBA16 image is 192 MB
MAX_HEADER_BYTES = 1024 * 1024
MAX_ID_CHARS = 64
MAX_SESSION_CHARS = 128
MAX_CLICKS = 1000
MAX_REGIONS = 4096
MAX_TOP_N = 10000
DEFAULT_TOP_N = 8  # patches a refine without regions takes when top_n is absent or null
MAX_SIDE_LIMIT = 65535  # hard bound on any declared side; the daemon announces its own smaller limit
MAX_COORDINATE = 10 ** 9  # |x|, |y| of a click (anything beyond is outside every image anyway)
UNCERTAINTY_SCALE = 0.25

REQUEST_OPS = ("hello", "open", "predict", "refine", "close", "status", "foreground")
REQUEST_STATES = ("queued", "running", "unknown")  # status reply: what became of the asked request
REPLY_OPS = REQUEST_OPS + ("need_pixels", "error")

# error codes
BAD_REQUEST = "bad_request"
TOO_LARGE = "too_large"
UNKNOWN_SESSION = "unknown_session"
SUPERSEDED = "superseded"
INTERNAL = "internal"
UNSUPPORTED_VERSION = "unsupported_version"
BUSY = "busy"
ERROR_CODES = (BAD_REQUEST, TOO_LARGE, UNKNOWN_SESSION, SUPERSEDED, INTERNAL, UNSUPPORTED_VERSION, BUSY)

DTYPES = {"uint8": 1, "uint16": 2}
IMAGE_ORDERS = {3: ("RGB", "BGR"), 4: ("RGBA", "BGRA")}
ALPHA_ORDER = "A"

RequestId = Union[str, int]
Box = Tuple[int, int, int, int]
