"""Model registry and checkpoints.

A checkpoint is a ``torch.save``d dict ``{"config": {...}, "state_dict": {...}, "meta": {...}}``
of plain types, loaded with ``weights_only=True``. ``config`` = ``{"name", "net", "refiner"}``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

from .matting_net import MattingNet, MattingNetConfig
from .refiner import PatchRefiner, RefinerConfig

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "clickmatte_lite0.pt"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


class ClickMatteModel(nn.Module):
    """The whole model: ``net`` (:class:`MattingNet`) and ``refiner`` (:class:`PatchRefiner`)."""

    def __init__(self, name: str, net_config: MattingNetConfig, refiner_config: RefinerConfig,
                 pretrained: bool = False) -> None:
        super().__init__()
        self.name = name
        self.net = MattingNet(net_config, pretrained=pretrained)
        self.refiner = PatchRefiner(refiner_config)
        self.meta: dict[str, Any] = {}

    def config_dict(self) -> dict:
        return {"name": self.name, "net": self.net.config.to_dict(), "refiner": self.refiner.config.to_dict()}


REGISTRY: dict[str, tuple[MattingNetConfig, RefinerConfig]] = {
    "clickmatte-lite0": (MattingNetConfig(), RefinerConfig()),
    # a thin variant for quick experiments and tests
    "clickmatte-lite0-small": (MattingNetConfig(decoder_widths=(48, 32, 24, 16, 8)), RefinerConfig(width=16)),
}


def build_model(
    name: str = "clickmatte-lite0",
    checkpoint: Optional[Union[str, os.PathLike]] = None,
    pretrained: bool = False,
    map_location: Union[str, torch.device] = "cpu",
) -> ClickMatteModel:
    """Build a registered model; with ``checkpoint``, its config and weights win.

    ``pretrained=True`` initialises the encoder from ImageNet (needs the ``train`` extra).
    Raises :class:`CheckpointError` for a missing, corrupt or incompatible checkpoint and
    ``ValueError`` for an unknown name.
    """
    if checkpoint is not None:
        return load_checkpoint(checkpoint, map_location=map_location)
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    net_cfg, ref_cfg = REGISTRY[name]
    return ClickMatteModel(name, net_cfg, ref_cfg, pretrained=pretrained)


def save_checkpoint(model: ClickMatteModel, path: Union[str, os.PathLike], meta: Optional[dict] = None,
                    half: bool = False) -> None:
    """Write ``{"config", "state_dict", "meta"}``; ``half=True`` stores float tensors as fp16."""
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        state[k] = v.half() if (half and v.is_floating_point()) else v
    payload = {"config": model.config_dict(), "state_dict": state, "meta": dict(meta or model.meta)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Union[str, os.PathLike], map_location: Union[str, torch.device] = "cpu") -> ClickMatteModel:
    """Load a checkpoint written by :func:`save_checkpoint` (fp16 tensors are cast back to fp32)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt zip, pickle with forbidden globals, truncated file...
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(payload, dict) or not {"config", "state_dict"} <= set(payload):
        raise CheckpointError(f"{path} is not a clickmatte checkpoint (needs 'config' and 'state_dict')")
    cfg = payload["config"]
    try:
        model = ClickMatteModel(
            str(cfg.get("name", "clickmatte-lite0")),
            MattingNetConfig.from_dict(cfg["net"]),
            RefinerConfig.from_dict(cfg["refiner"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} has an invalid config: {exc}") from exc
    own = model.state_dict()
    state = payload["state_dict"]
    bad = [k for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if bad or missing or unexpected:
        raise CheckpointError(
            f"{path} does not fit model {model.name!r}: {len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(bad)} mis-shaped tensors (e.g. {(missing + unexpected + bad)[:3]})"
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    model.meta = dict(payload.get("meta") or {})
    return model


def average_models(models: list[ClickMatteModel], weights: list[float]) -> ClickMatteModel:
    """Weight-space average ("model soup") of models of one architecture fine-tuned from a common
    ancestor: float tensors are mixed with ``weights`` (>= 0, summing to 1), integer buffers are
    taken from the last model. Returns a new model with the last model's config and meta."""
    if not models or len(models) != len(weights):
        raise ValueError("need one weight per model and at least one model")
    if any(w < 0 for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"weights must be >= 0 and sum to 1, got {weights}")
    configs = [m.config_dict() for m in models]
    if any(c != configs[0] for c in configs[1:]):
        raise ValueError("models to average must share one architecture (config)")
    states = [m.state_dict() for m in models]
    last = models[-1]
    out = ClickMatteModel(last.name, last.net.config, last.refiner.config)
    mixed = {}
    for k, v in states[-1].items():
        if v.is_floating_point():
            mixed[k] = sum(w * st[k].float() for w, st in zip(weights, states))
        else:
            mixed[k] = v
    out.load_state_dict(mixed)
    out.meta = dict(last.meta)
    return out
