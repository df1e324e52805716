"""clickmatte.model: the network of Wei et al. (CVPR 2021) and the ``Predictor`` that serves it."""
from .clicks import Click, encode_clicks, normalize_clicks
from .losses import gradient_loss, laplace_nll, matting_losses, refinement_loss, regression_loss
from .matting_net import MattingNet, MattingNetConfig
from .predictor import Predictor, load_default_model, resolve_device
from .refiner import PatchRefiner, RefinerConfig, covering_patches, crop_patches, paste_patches, select_patches
from .registry import (
    DEFAULT_CHECKPOINT,
    CheckpointError,
    ClickMatteModel,
    build_model,
    load_checkpoint,
    save_checkpoint,
)

__all__ = [
    "Click", "encode_clicks", "normalize_clicks",
    "gradient_loss", "laplace_nll", "matting_losses", "refinement_loss", "regression_loss",
    "MattingNet", "MattingNetConfig",
    "Predictor", "load_default_model", "resolve_device",
    "PatchRefiner", "RefinerConfig", "covering_patches", "crop_patches", "paste_patches", "select_patches",
    "DEFAULT_CHECKPOINT", "CheckpointError", "ClickMatteModel", "build_model", "load_checkpoint", "save_checkpoint",
]
