"""MattingNet: one encoder, an alpha decoder and an uncertainty decoder (Wei et al., CVPR 2021).

Input: RGB in [0, 1], two click-disk maps (foreground, background) and optionally the previous
alpha (RITM-style). The click maps and previous alpha are fed to the encoder's stem *and*
re-injected at every decoder stage ("guidance"), so clicks steer the decoder directly.

Outputs at input size: ``alpha`` in [0, 1] and ``sigma`` > 0, the scale of a Laplace
distribution over the true alpha (trained with ``log sigma + |alpha_gt - alpha| / sigma``). The
uncertainty decoder sees the encoder features and the predicted alpha *detached*, so its loss
never changes the matting network.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .encoder import FEATURE_CHANNELS, EfficientNetLite0Encoder, load_imagenet_weights

GUIDE_CHANNELS = 6  # rgb(3) + fg clicks + bg clicks + previous alpha
SIGMA_MIN = 1e-3


@dataclass
class MattingNetConfig:
    decoder_widths: tuple[int, ...] = (96, 64, 48, 32, 16)  # strides 16, 8, 4, 2, 1
    use_prev_alpha: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decoder_widths"] = list(self.decoder_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MattingNetConfig":
        d = dict(d)
        if "decoder_widths" in d:
            d["decoder_widths"] = tuple(int(w) for w in d["decoder_widths"])
        return cls(**d)


def conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def guide_pyramid(guide: torch.Tensor, levels: int = 5) -> list[torch.Tensor]:
    """Guidance at strides 1, 2, 4, ... : average-pooled RGB/alpha, max-pooled click maps."""
    out = [guide]
    g = guide
    for _ in range(levels - 1):
        avg = F.avg_pool2d(g, 2)
        mx = F.max_pool2d(g[:, 3:5], 2)
        g = torch.cat([avg[:, :3], mx, avg[:, 5:]], dim=1)
        out.append(g)
    return out


class Decoder(nn.Module):
    """U-Net decoder from the stride-32 features to one output channel at stride 1.

    ``extra`` input channels (e.g. the detached alpha for the uncertainty decoder) join the
    guidance at every stage.
    """

    def __init__(self, widths: tuple[int, ...], extra: int = 0) -> None:
        super().__init__()
        if len(widths) != 5:
            raise ValueError(f"decoder_widths needs 5 entries (strides 16..1), got {widths}")
        g = GUIDE_CHANNELS + extra
        skips = (FEATURE_CHANNELS[3], FEATURE_CHANNELS[2], FEATURE_CHANNELS[1], FEATURE_CHANNELS[0], 0)
        cin = FEATURE_CHANNELS[4]
        stages = []
        for i, (w, s) in enumerate(zip(widths, skips)):
            layers = [conv_bn_relu(cin + s + g, w)]
            if i < 3:  # two convolutions at the cheap low resolutions, one at strides 2 and 1
                layers.append(conv_bn_relu(w, w))
            stages.append(nn.Sequential(*layers))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(cin, 1, 3, padding=1)

    def forward(self, feats: list[torch.Tensor], guides: list[torch.Tensor]) -> torch.Tensor:
        # feats: strides 2, 4, 8, 16, 32; guides: strides 1, 2, 4, 8, 16
        x = feats[4]
        skips = [feats[3], feats[2], feats[1], feats[0], None]
        for i, stage in enumerate(self.stages):
            g = guides[4 - i]
            x = F.interpolate(x, size=g.shape[-2:], mode="bilinear", align_corners=False)
            parts = [x, g] if skips[i] is None else [x, skips[i], g]
            x = stage(torch.cat(parts, dim=1))
        return self.head(x)


class MattingNet(nn.Module):
    """Click-guided matting network with an uncertainty head.

    ``forward(rgb, clicks, prev_alpha=None)``:
      - ``rgb``: ``(B, 3, H, W)`` float in [0, 1];
      - ``clicks``: ``(B, 2, H, W)`` disk maps (foreground, background) in {0, 1};
      - ``prev_alpha``: ``(B, 1, H, W)`` in [0, 1] or ``None`` (zeros).
    Any ``H, W`` >= 1 (padded internally to a multiple of 32). Returns ``(alpha, sigma)``, each
    ``(B, 1, H, W)``: alpha in [0, 1], sigma >= ``SIGMA_MIN``. ``forward_alpha`` returns the same alpha
    without computing sigma.
    """

    def __init__(self, config: Optional[MattingNetConfig] = None, pretrained: bool = False) -> None:
        super().__init__()
        self.config = config or MattingNetConfig()
        self.encoder = EfficientNetLite0Encoder(in_channels=GUIDE_CHANNELS)
        if pretrained:
            load_imagenet_weights(self.encoder)
        self.alpha_decoder = Decoder(self.config.decoder_widths)
        self.sigma_decoder = Decoder(self.config.decoder_widths, extra=1)

    def matting_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters()) + list(self.alpha_decoder.parameters())

    def _encode(self, rgb: torch.Tensor, clicks: torch.Tensor,
                prev_alpha: Optional[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Check the inputs, pad them to a multiple of 32 -> ``(features, guidance pyramid, alpha)``;
        alpha is ``(B, 1, H', W')`` at the padded size."""
        if rgb.dim() != 4 or rgb.shape[1] != 3:
            raise ValueError(f"rgb must be (B, 3, H, W), got {tuple(rgb.shape)}")
        b, _, h, w = rgb.shape
        if clicks.shape != (b, 2, h, w):
            raise ValueError(f"clicks must be {(b, 2, h, w)}, got {tuple(clicks.shape)}")
        if prev_alpha is None or not self.config.use_prev_alpha:
            prev_alpha = rgb.new_zeros(b, 1, h, w)
        elif prev_alpha.shape != (b, 1, h, w):
            raise ValueError(f"prev_alpha must be {(b, 1, h, w)}, got {tuple(prev_alpha.shape)}")
        x = torch.cat([(rgb * 255.0 - 127.0) / 128.0, clicks, prev_alpha], dim=1)
        ph, pw = (-h) % 32, (-w) % 32
        if ph or pw:
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        feats = self.encoder(x)
        guides = guide_pyramid(x)
        alpha = torch.sigmoid(self.alpha_decoder(feats, guides))
        return feats, guides, alpha

    def forward(
        self, rgb: torch.Tensor, clicks: torch.Tensor, prev_alpha: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = rgb.shape[-2:]
        feats, guides, alpha = self._encode(rgb, clicks, prev_alpha)
        a_det = alpha.detach()
        sguides = [torch.cat([g, F.adaptive_avg_pool2d(a_det, g.shape[-2:])], 1) for g in guides]
        sigma = F.softplus(self.sigma_decoder([f.detach() for f in feats], sguides)) + SIGMA_MIN
        return alpha[..., :h, :w], sigma[..., :h, :w]

    def forward_alpha(
        self, rgb: torch.Tensor, clicks: torch.Tensor, prev_alpha: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """The alpha of :meth:`forward` alone, ``(B, 1, H, W)`` in [0, 1], without running the uncertainty
        decoder (about 40 % of a forward): for passes whose sigma nobody reads (context, prior, mirror)."""
        h, w = rgb.shape[-2:]
        return self._encode(rgb, clicks, prev_alpha)[2][..., :h, :w]
