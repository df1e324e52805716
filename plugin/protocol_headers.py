"""Builders of valid request and reply headers, for clients and the daemon (standard library only):
``hello_request`` ... ``status_request``, ``error_reply`` ... ``status_reply``."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Sequence, Union

from .protocol_constants import DEFAULT_TOP_N, PROTOCOL_VERSION, RequestId, UNCERTAINTY_SCALE
from .protocol_messages import BufferSpec


def hello_request(rid: RequestId, client: str = "") -> Dict[str, Any]:
    return {"id": rid, "op": "hello", "protocol": PROTOCOL_VERSION, "client": client}


def open_request(rid: RequestId, digest: Optional[str] = None, image: Optional[BufferSpec] = None,
                 resume: bool = False) -> Dict[str, Any]:
    h: Dict[str, Any] = {"id": rid, "op": "open"}
    if resume is not False:  # absent unless asked: the request stays what a 1.1 daemon expects
        h["resume"] = resume
    if digest is not None:
        h["digest"] = digest
    if image is not None:
        h["buffers"] = [image.to_dict()]
    return h


def predict_request(rid: RequestId, session: str, clicks: Iterable[Dict[str, Any]], preview: Optional[int] = None,
                    alpha_dtype: str = "uint8", uncertainty: bool = True,
                    prev_alpha: Union[bool, str] = "auto", prev_buffer: Optional[BufferSpec] = None) -> Dict[str, Any]:
    """A predict header; ``prev_buffer`` (protocol 1.4): the spec of a ``prev_alpha`` buffer sent with it
    (``prev_alpha`` is then true)."""
    h: Dict[str, Any] = {"id": rid, "op": "predict", "session": session, "clicks": [dict(c) for c in clicks],
                         "preview": preview, "alpha_dtype": alpha_dtype, "uncertainty": uncertainty,
                         "prev_alpha": True if prev_buffer is not None else prev_alpha}
    if prev_buffer is not None:
        h["buffers"] = [prev_buffer.to_dict()]
    return h


def refine_request(rid: RequestId, session: str, top_n: Optional[int] = DEFAULT_TOP_N, regions: Optional[Iterable[Sequence[int]]] = None,
                   mask: Optional[BufferSpec] = None, preview: Optional[int] = None, alpha_dtype: str = "uint8",
                   uncertainty: bool = False) -> Dict[str, Any]:
    h: Dict[str, Any] = {"id": rid, "op": "refine", "session": session, "top_n": top_n, "preview": preview,
                         "alpha_dtype": alpha_dtype, "uncertainty": uncertainty}
    if regions is not None:
        h["regions"] = [list(r) for r in regions]
    if mask is not None:
        h["buffers"] = [mask.to_dict()]
    return h


def close_request(rid: RequestId, session: str) -> Dict[str, Any]:
    return {"id": rid, "op": "close", "session": session}


def foreground_request(rid: RequestId, session: str, alpha: BufferSpec) -> Dict[str, Any]:
    """Decontaminate: the session image's foreground colours estimated under ``alpha`` (a full-size
    uint8 mask); the reply's buffer ``foreground`` is RGB uint8 of the image's size."""
    return {"id": rid, "op": "foreground", "session": session, "buffers": [alpha.to_dict()]}


def status_request(rid: RequestId, request: Optional[RequestId] = None) -> Dict[str, Any]:
    h: Dict[str, Any] = {"id": rid, "op": "status"}
    if request is not None:
        h["request"] = request
    return h


def error_reply(rid: Optional[RequestId], code: str, message: str) -> Dict[str, Any]:
    return {"id": rid, "op": "error", "code": code, "message": message}


def hello_reply(rid: RequestId, server: str, device: str, model: Dict[str, Any],
                limits: Dict[str, Any]) -> Dict[str, Any]:
    """``hello`` reply: this protocol's version, the server's name and version, its device, what model
    runs (name, weights, settings) and its limits (see ``hello`` above)."""
    return {"id": rid, "op": "hello", "protocol": PROTOCOL_VERSION, "server": server, "device": device,
            "model": model, "limits": limits}


def open_reply(rid: RequestId, session: str, width: int, height: int, digest: str, cached: bool,
               resumed: bool) -> Dict[str, Any]:
    return {"id": rid, "op": "open", "session": session, "width": width, "height": height, "digest": digest,
            "cached": cached, "resumed": resumed}


def need_pixels_reply(rid: RequestId, digest: str) -> Dict[str, Any]:
    """The answer to an ``open`` by digest alone for an image the daemon does not hold."""
    return {"id": rid, "op": "need_pixels", "digest": digest}


def matte_reply(rid: RequestId, op: str, session: str, specs: Sequence[BufferSpec], full_width: int,
                full_height: int, patches: Optional[Iterable[Sequence[int]]] = None,
                timing: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``predict`` / ``refine`` reply (``op``) for the buffers ``specs`` (``alpha`` first, then optionally
    ``uncertainty``, all of one size); ``patches``: the boxes a refine changed."""
    if op not in ("predict", "refine") or not specs:
        raise ValueError(f"a matte reply is for predict or refine with an alpha buffer, got {op!r}, {len(specs)}")
    h: Dict[str, Any] = {"id": rid, "op": op, "session": session, "width": specs[0].width,
                         "height": specs[0].height, "full_width": full_width, "full_height": full_height,
                         "uncertainty_scale": UNCERTAINTY_SCALE, "buffers": [s.to_dict() for s in specs]}
    if patches is not None:
        h["patches"] = [list(b) for b in patches]
    if timing is not None:
        h["timing"] = timing
    return h


def close_reply(rid: RequestId, session: str, closed: bool) -> Dict[str, Any]:
    return {"id": rid, "op": "close", "session": session, "closed": closed}


def foreground_reply(rid: RequestId, session: str, width: int, height: int,
                     timing: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``foreground`` reply: one RGB uint8 buffer ``foreground`` of ``width`` x ``height``."""
    h: Dict[str, Any] = {"id": rid, "op": "foreground", "session": session, "width": width, "height": height,
                         "buffers": [BufferSpec("foreground", width, height, 3, "uint8", "RGB").to_dict()]}
    if timing is not None:
        h["timing"] = timing
    return h


def status_reply(rid: RequestId, queued: int, queued_bytes: int, running: Optional[Dict[str, Any]],
                 uptime_s: float, request: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``status`` reply; ``running`` is ``{"op", "elapsed_s"}`` or None, ``request`` (when asked)
    ``{"id", "state", "ahead", "elapsed_s"}``."""
    h: Dict[str, Any] = {"id": rid, "op": "status", "queued": queued, "queued_bytes": queued_bytes,
                         "running": running, "uptime_s": uptime_s}
    if request is not None:
        h["request"] = request
    return h
