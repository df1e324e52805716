"""clickmatte.model: the network of Wei et al. (CVPR 2021) and the ``Predictor`` that serves it.

Sub-packages: ``network`` (the PyTorch network and its checkpoints), ``inference`` (the ``Predictor`` and its
settings), ``training`` (training data and losses; the loop is ``train.py``), ``evaluation`` (the pieces of
``clickmatte-eval``, whose command line is ``evaluate.py``). The names below are imported on first use, so
``clickmatte.model.inference.config`` (the inference settings) can be read without importing torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "inference.clicks": ("Click", "encode_clicks", "normalize_clicks"),
    "inference.config": ("PredictorConfig",),
    "training.losses": ("gradient_loss", "laplace_nll", "matting_losses", "refinement_loss", "regression_loss"),
    "network.matting_net": ("MattingNet", "MattingNetConfig"),
    "inference.predictor": ("Predictor", "load_default_model", "resolve_device"),
    "network.refiner": ("PatchRefiner", "RefinerConfig", "covering_patches", "crop_patches", "paste_patches",
                "select_patches"),
    "network.registry": ("DEFAULT_CHECKPOINT", "CheckpointError", "ClickMatteModel", "build_model", "load_checkpoint",
                 "save_checkpoint"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
