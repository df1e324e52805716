"""clickmatte wire protocol v1: the single definition of what travels between plugin and daemon.

Standard library only (this file runs inside Krita's / GIMP's own Python; the daemon imports it
as ``clickmatte.plugin.protocol``).

Transport
---------
ZeroMQ multipart messages. The plugin uses a ``DEALER`` socket, the daemon a ``ROUTER``
(default endpoint :data:`DEFAULT_ENDPOINT`). Every message, request or reply, is::

    [MAGIC, header_json, *buffers]

- ``MAGIC`` = ``b"clickmatte/1"`` (the protocol major version is part of it);
- ``header_json``: a UTF-8 JSON object with ``"id"`` (request id: a string of 1..64 chars or a
  non-negative integer; echoed in the reply), ``"op"`` and the op's own fields; unknown fields are
  ignored (minor versions add fields, never remove or re-type them);
- ``buffers``: raw pixel frames (never base64, never pickle), one per entry of the header's
  ``"buffers"`` list, in the same order. Each entry is a :class:`BufferSpec` dict
  ``{"name", "width", "height", "channels", "dtype": "uint8"|"uint16", "order"}``; the frame must
  hold exactly ``width * height * channels * bytes_per_sample`` bytes, rows top to bottom, pixels
  interleaved, ``uint16`` little-endian. ``order`` names the channels in memory: ``"RGB"``,
  ``"BGR"``, ``"RGBA"``, ``"BGRA"`` (Krita's paint layers are ``BGRA``; send them as they are, the
  daemon converts) or ``"A"`` for single-channel alpha / uncertainty / mask buffers.

Ops (request -> reply ``op``)
-----------------------------
``hello``   ``{"protocol": "1.4", "client": str}`` (both optional)
            -> ``hello`` ``{"protocol": "1.4", "server": str, "device": str, "model": {...},
            "limits": {"max_message_bytes", "max_image_pixels", "min_side", "max_side",
            "max_sessions", "max_clicks", "max_regions", "max_queue_bytes", "max_top_n",
            "max_region_pixels"}}`` (the last three since daemons of issue 20; read a missing one as
            "no limit announced"). ``model`` holds the model's ``name``, ``weights`` (a file name) and
            ``digest`` (``"sha256:..."`` of the weights), never a path on the server.
            A ``protocol`` whose major is not 1 (or a different MAGIC) -> error
            ``unsupported_version``.
``open``    ``{"digest": "sha256:<64 hex>"?, "buffers": [image]?, "resume": bool?}`` where
            ``image`` is a buffer named ``"image"`` with 3 or 4 channels (uint8 or uint16). Send
            the digest alone first (cheap); if the daemon knows it the reply is ``open``, else
            ``need_pixels`` ``{"digest"}`` and the client sends the pixels (with or without the
            digest; when given it must match :func:`image_digest` of the pixels).
            ``resume`` (since 1.2, default false): instead of a new session, return the most
            recently used live session on the same image, with its state (last alpha, clicks), so
            that ``prev_alpha: "auto"`` keeps chaining for a client that keeps no session id of
            its own (each GIMP call is a new process); a new session only when there is none.
            -> ``open`` ``{"session": str, "width", "height", "digest", "cached": bool,
            "resumed": bool}`` (``resumed``, since 1.2: an existing session was returned; older
            daemons ignore ``resume`` and send no ``resumed``: read its absence as false).
``predict`` ``{"session", "clicks": [{"x", "y", "label": "fg"|"bg"}, ...], "preview": int|null,
            "alpha_dtype": "uint8"|"uint16", "uncertainty": bool, "prev_alpha": bool|"auto"}``.
            Clicks are full-image pixel coordinates (x right, y down). ``preview`` = N asks for
            outputs scaled so that their long side is at most N (live updates); null = full size.
            ``uncertainty`` (default true) adds the uncertainty buffer; ``prev_alpha`` (default
            false) feeds the session's last alpha back into the network; ``"auto"`` (since 1.1)
            does so when the clicks only add to those of the session's last prediction (the
            click-by-click use the network is trained for), gives the same clicks the same answer
            again, and starts afresh when clicks were moved or removed (the order of the clicks
            does not matter). ``buffers: [prev_alpha]`` (since 1.4, with ``"prev_alpha": true``):
            one uint8 buffer named ``"prev_alpha"`` of the image's size is the previous alpha fed
            back instead of the session's last one: an editor sends its own mask, so that the same
            document state gives the same matte even when the daemon has forgotten the session
            (a daemon older than 1.4 answers such a predict with ``bad_request``).
            -> ``predict`` :ref:`matte reply <matte>`.
``refine``  ``{"session", "top_n": int|null, "regions": [[x, y, w, h], ...]?, "buffers": [mask]?,
            "preview", "alpha_dtype", "uncertainty" (default false)}``: refine the session's last
            prediction at full resolution: the ``top_n`` (default :data:`DEFAULT_TOP_N`) most uncertain 64x64
            patches, or the patches covering ``regions`` / a selection ``mask`` (a buffer named
            ``"mask"``, 1 channel uint8, full image size, non-zero = selected; only selected
            pixels change). -> ``refine`` matte reply plus ``"patches": [[x, y, w, h], ...]``
            (may be fewer than ``top_n``, or none: on an image no larger than the daemon's
            working size only mostly-sure patches are picked, see ``--refine-max-soft``).
            ``top_n`` above ``limits.max_top_n``, or regions / a mask's bounding box covering more
            than ``limits.max_region_pixels``, is ``too_large``. A long refine runs in steps; any
            newer request for the same session makes the rest of it ``superseded`` (the session
            keeps the matte it had before the refine).
``close``   ``{"session"}`` -> ``close`` ``{"session", "closed": bool}`` (idempotent).
``status``  (since 1.3) ``{"request": <request id>?}``: how busy the daemon is, answered at once by its
            I/O thread (like ``hello``) while the model works, so that a client can tell a busy
            daemon from a gone one. -> ``status`` ``{"queued": int (requests waiting),
            "queued_bytes": int, "running": {"op": str, "elapsed_s": float} | null (the request the
            model is on), "uptime_s": float, "request": {"id", "state": "queued"|"running"|"unknown",
            "ahead": int, "elapsed_s": float}?}``. ``request`` (only when asked) describes the asking
            connection's request with that id: ``queued`` behind ``ahead`` others, ``running``, or
            ``unknown`` (already answered: its reply is on the way, or never received: the daemon
            restarted). ``elapsed_s``: seconds since the daemon received it. A daemon older than 1.3
            answers ``status`` with ``bad_request``; ``hello`` then serves as the sign of life.
``foreground`` ``{"session", "buffers": [alpha]}`` with one full-size uint8 ``alpha`` buffer (the mask
            as the editor holds it) -> ``foreground`` ``{"session", "width", "height", "buffers":
            [foreground]}``: the session image's foreground colours estimated under that alpha
            (pymatting's ``estimate_foreground_ml``: no spill of the old background at soft edges),
            RGB uint8, full size; the editor puts them on a new layer under the same mask
            ("decontaminate colours"). A daemon without it answers ``bad_request`` (unknown op).

Matte reply (``predict`` / ``refine``): ``{"session", "width", "height", "full_width",
"full_height", "uncertainty_scale": 0.25, "buffers": [alpha, uncertainty?]}``: ``alpha`` is one
channel (``order`` ``"A"``), ``uint8`` (0..255) or ``uint16`` (0..65535) as asked; ``uncertainty``
is one channel uint8 where 255 means a Laplace scale sigma >= ``uncertainty_scale`` (linear below).
``width``/``height`` are the buffers' size (smaller than ``full_*`` for previews). ``timing``
(optional, informative): ``{"model_ms", "encode_ms"}`` spent in the daemon.

Errors: any request may be answered ``{"op": "error", "id": <request id or null>, "code", "message"}``
with ``code`` one of :data:`ERROR_CODES`. ``superseded`` means a newer ``predict`` for the same
session arrived before this one was run ("latest click wins"): drop it silently. ``busy``: the
daemon's request queue (``limits.max_queue_bytes``) cannot take the message now; try again later.
A message larger than ``limits.max_message_bytes`` is ``too_large``; a single frame larger than
that makes the daemon drop the connection without a reply (ZeroMQ's ``MAXMSGSIZE``): check the
limits before sending very large images.

Python API: :func:`encode` / :func:`decode` turn a header dict + buffers into frames and back, and
validate everything (missing or mistyped fields, buffer sizes, message size, UTF-8/JSON); every
problem raises one exception type, :class:`ProtocolError`, whose ``code`` is the error code to reply
with. The ``*_request`` / ``*_reply`` helpers build valid headers.

The code: ``protocol_constants.py`` (numbers and names), ``protocol_messages.py`` (error, buffers, typed
requests), ``protocol_checks.py`` (header validation), ``protocol_codec.py`` (encode / decode),
``protocol_headers.py`` (header builders); every public name is importable from this module.
"""
from __future__ import annotations

from .protocol_constants import (  # noqa: F401 - the protocol's names, importable from here
    ALPHA_ORDER, BAD_REQUEST, BUSY, Box, DEFAULT_ENDPOINT, DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TOP_N, DTYPES, ERROR_CODES, IMAGE_ORDERS, INTERNAL, MAGIC,
    MAGIC_PREFIX, MAX_CLICKS, MAX_COORDINATE, MAX_HEADER_BYTES, MAX_ID_CHARS, MAX_REGIONS,
    MAX_SESSION_CHARS, MAX_SIDE_LIMIT, MAX_TOP_N, PROTOCOL_MAJOR, PROTOCOL_MINOR, PROTOCOL_VERSION,
    REPLY_OPS, REQUEST_OPS, REQUEST_STATES, RequestId, SUPERSEDED, TOO_LARGE,
    UNCERTAINTY_SCALE, UNKNOWN_SESSION, UNSUPPORTED_VERSION,
)
from .protocol_messages import (  # noqa: F401 - the protocol's names, importable from here
    Buffer, BufferSpec, CloseRequest, ForegroundRequest, HelloRequest, Message,
    OpenRequest, PredictRequest, ProtocolError, RefineRequest, Request, StatusRequest,
)
from .protocol_checks import (  # noqa: F401 - the protocol's names, importable from here
    check_boxes, check_clicks, check_request_id, image_digest, parse_version, validate_header,
)
from .protocol_codec import (  # noqa: F401 - the protocol's names, importable from here
    decode, encode, peek_request_id,
)
from .protocol_headers import (  # noqa: F401 - the protocol's names, importable from here
    close_reply, close_request, error_reply, foreground_reply, foreground_request, hello_reply,
    hello_request, matte_reply, need_pixels_reply, open_reply, open_request, predict_request,
    refine_request, status_reply, status_request,
)

__all__ = [
    'ALPHA_ORDER', 'BAD_REQUEST', 'BUSY', 'Box', 'Buffer', 'BufferSpec',
    'CloseRequest', 'DEFAULT_ENDPOINT', 'DEFAULT_MAX_MESSAGE_BYTES', 'DEFAULT_TOP_N', 'DTYPES', 'ERROR_CODES',
    'ForegroundRequest', 'HelloRequest', 'IMAGE_ORDERS', 'INTERNAL', 'MAGIC', 'MAGIC_PREFIX',
    'MAX_CLICKS', 'MAX_COORDINATE', 'MAX_HEADER_BYTES', 'MAX_ID_CHARS', 'MAX_REGIONS', 'MAX_SESSION_CHARS',
    'MAX_SIDE_LIMIT', 'MAX_TOP_N', 'Message', 'OpenRequest', 'PROTOCOL_MAJOR', 'PROTOCOL_MINOR',
    'PROTOCOL_VERSION', 'PredictRequest', 'ProtocolError', 'REPLY_OPS', 'REQUEST_OPS', 'REQUEST_STATES',
    'RefineRequest', 'Request', 'RequestId', 'SUPERSEDED', 'StatusRequest', 'TOO_LARGE',
    'UNCERTAINTY_SCALE', 'UNKNOWN_SESSION', 'UNSUPPORTED_VERSION', 'check_boxes', 'check_clicks', 'check_request_id',
    'close_reply', 'close_request', 'decode', 'encode', 'error_reply', 'foreground_reply',
    'foreground_request', 'hello_reply', 'hello_request', 'image_digest', 'matte_reply', 'need_pixels_reply',
    'open_reply', 'open_request', 'parse_version', 'peek_request_id', 'predict_request', 'refine_request',
    'status_reply', 'status_request', 'validate_header',
]
