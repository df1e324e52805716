"""The engines ``clickmatte-eval`` scores: ``net`` (the network through the :class:`~clickmatte.model.Predictor`)
and ``classical`` (:class:`~.classical.ClassicalEngine`, GrabCut + closed-form matting), both answering
``set_image(rgb)`` and ``predict(clicks, prev_alpha)``.
"""
from __future__ import annotations

import json
from typing import Any, Optional, Protocol, Sequence

import numpy as np

from ..inference.config import PredictorConfig

ENGINES = ("net", "classical")


class Engine(Protocol):
    """What the evaluator needs from an engine (``Predictor`` and ``ClassicalEngine`` both fit)."""

    def set_image(self, image: np.ndarray) -> None: ...

    def predict(self, clicks: Sequence[dict], prev_alpha: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]: ...


class NetEngine:
    """The network through :class:`clickmatte.model.Predictor` (``predict`` and ``refine``) with the
    settings ``config`` (None: the defaults)."""

    name = "net"

    def __init__(self, checkpoint: Optional[str] = None, device: str = "auto",
                 config: Optional[PredictorConfig] = None) -> None:
        from ..inference.predictor import Predictor, load_default_model
        from ..network.registry import DEFAULT_CHECKPOINT

        model = load_default_model(checkpoint)
        self.predictor = Predictor(model=model, device=device, config=config)
        path = checkpoint or (DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else None)
        self.description = {"checkpoint": str(path) if path else None, "trained": path is not None,
                            "model": model.name, "meta": _jsonable(model.meta),
                            "device": str(self.predictor.device), **self.predictor.config.as_dict()}

    def set_image(self, image: np.ndarray) -> None:
        self.predictor.set_image(image)

    def predict(self, clicks: Sequence[dict], prev_alpha: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        return self.predictor.predict(clicks, prev_alpha=prev_alpha)


def make_engine(name: str, checkpoint: Optional[str] = None, device: str = "auto",
                config: Optional[PredictorConfig] = None) -> Engine:
    """``"net"`` -> :class:`NetEngine` (with the settings ``config``), ``"classical"`` -> :class:`ClassicalEngine`;
    ``ValueError`` otherwise."""
    if name == "net":
        return NetEngine(checkpoint, device, config)
    if name == "classical":
        from .classical import ClassicalEngine

        return ClassicalEngine()
    raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")


def _jsonable(x: Any) -> Any:
    try:
        json.dumps(x)
        return x
    except (TypeError, ValueError):
        return repr(x)
