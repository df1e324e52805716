"""Read a saved Krita ``.kra`` on the host (no Krita needed): its layer tree and layers' pixels.

A ``.kra`` is a zip: ``maindoc.xml`` lists layers (``<layer nodetype=... filename=...>``) and
their masks (``<masks><mask .../>``); pixel data lives in ``NAME/layers/<filename>`` (masks:
``<filename>.pixelselection``) in Krita's tiled format version 2::

    VERSION 2\\nTILEWIDTH 64\\nTILEHEIGHT 64\\nPIXELSIZE N\\nDATA COUNT\\n
    then COUNT times: "X,Y,LZF,SIZE\\n" + SIZE bytes (1 flag byte: 1 = LZF-compressed, 0 = raw;
    then the tile, with its bytes grouped by position within the pixel: all first bytes, then
    all second bytes, ...)

Missing tiles hold the ``<file>.defaultpixel`` value.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

NS = "{http://www.calligra.org/DTD/krita}"


def lzf_decompress(data: bytes, out_len: int) -> bytes:
    """liblzf decompression (what Krita's tile compressor uses)."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            run = ctrl + 1
            out += data[i : i + run]
            i += run
        else:
            length = ctrl >> 5
            ref = len(out) - ((ctrl & 0x1F) << 8) - 1
            if length == 7:
                length += data[i]
                i += 1
            ref -= data[i]
            i += 1
            length += 2
            if ref < 0:
                raise ValueError("corrupt LZF data: back-reference before the start")
            for _ in range(length):
                out.append(out[ref])
                ref += 1
    if len(out) != out_len:
        raise ValueError(f"LZF data decompressed to {len(out)} bytes, expected {out_len}")
    return bytes(out)


def read_tiles(blob: bytes, default: bytes, width: int, height: int) -> np.ndarray:
    """Decode a tiled-format-2 paint device into an ``(height, width, pixelsize)`` uint8 array
    covering the image rectangle (0, 0, width, height)."""
    pos = 0
    header: Dict[str, int] = {}
    while True:
        end = blob.index(b"\n", pos)
        line = blob[pos:end].decode("ascii")
        pos = end + 1
        key, _, value = line.partition(" ")
        header[key] = int(value)
        if key == "DATA":
            break
    if header.get("VERSION") != 2:
        raise ValueError(f"unsupported tile format version {header.get('VERSION')}")
    tw, th, ps = header["TILEWIDTH"], header["TILEHEIGHT"], header["PIXELSIZE"]
    if len(default) != ps:
        raise ValueError(f"default pixel has {len(default)} bytes, pixel size is {ps}")
    out = np.empty((height, width, ps), np.uint8)
    out[...] = np.frombuffer(default, np.uint8)
    for _ in range(header["DATA"]):
        end = blob.index(b"\n", pos)
        x, y, method, size = blob[pos:end].decode("ascii").split(",")
        pos = end + 1
        chunk = blob[pos : pos + int(size)]
        pos += int(size)
        if method != "LZF":
            raise ValueError(f"unsupported tile compression {method}")
        raw = lzf_decompress(chunk[1:], tw * th * ps) if chunk[0] == 1 else bytes(chunk[1:])
        tile = np.frombuffer(raw, np.uint8).reshape(ps, th, tw).transpose(1, 2, 0)  # de-linearise
        x0, y0 = int(x), int(y)
        xs, ys = max(0, x0), max(0, y0)
        xe, ye = min(width, x0 + tw), min(height, y0 + th)
        if xs < xe and ys < ye:
            out[ys:ye, xs:xe] = tile[ys - y0 : ye - y0, xs - x0 : xe - x0]
    return out


@dataclass
class KraNode:
    name: str
    nodetype: str
    filename: str
    attrs: Dict[str, str]
    masks: List["KraNode"] = field(default_factory=list)


class KraFile:
    """A saved ``.kra``: ``width``, ``height``, ``colorspace``, ``layers`` (top first) and pixels."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with zipfile.ZipFile(self.path) as zf:
            self.names = set(zf.namelist())
            self.maindoc = zf.read("maindoc.xml").decode("utf-8")
        root = ET.fromstring(self.maindoc)
        image = root.find(f"{NS}IMAGE")
        if image is None:
            raise ValueError("maindoc.xml has no IMAGE")
        self.doc_name = image.get("name", "")
        self.width, self.height = int(image.get("width")), int(image.get("height"))
        self.colorspace = image.get("colorspacename", "")
        self.layers: List[KraNode] = []
        for el in image.find(f"{NS}layers") or []:
            node = KraNode(el.get("name", ""), el.get("nodetype", ""), el.get("filename", ""), dict(el.attrib))
            masks = el.find(f"{NS}masks")
            for m in masks if masks is not None else []:
                node.masks.append(KraNode(m.get("name", ""), m.get("nodetype", ""), m.get("filename", ""),
                                          dict(m.attrib)))
            self.layers.append(node)

    def layer(self, name: str) -> Optional[KraNode]:
        return next((n for n in self.layers if n.name == name), None)

    def _read(self, member: str) -> bytes:
        with zipfile.ZipFile(self.path) as zf:
            return zf.read(member)

    def pixels(self, node: KraNode, mask: bool = False) -> np.ndarray:
        """``(height, width, pixelsize)`` uint8 bytes of a paint layer (or, with ``mask``, a mask's selection)."""
        base = f"{self.doc_name}/layers/{node.filename}" + (".pixelselection" if mask else "")
        return read_tiles(self._read(base), self._read(base + ".defaultpixel"), self.width, self.height)

    def shapes_svg(self, node: KraNode) -> str:
        return self._read(f"{self.doc_name}/layers/{node.filename}.shapelayer/content.svg").decode("utf-8")
