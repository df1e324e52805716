"""Inference settings: :class:`PredictorConfig`, the one place each default and limit is written.

The :class:`~clickmatte.model.Predictor`, the daemon's engine and flags, ``clickmatte-eval`` and the
benchmarks all build or take a ``PredictorConfig``; :func:`add_predictor_arguments` and
:func:`predictor_config_from_args` are the one mapping between it and command-line flags.

Nothing here imports torch, so the daemon reads it for ``--help`` and its hello reply
without loading the model. How many patches an automatic refinement takes is not a setting here:
:meth:`~clickmatte.model.Predictor.refine` is told each time (the daemon passes the wire protocol's
``top_n``, whose default is :data:`clickmatte.plugin.protocol.DEFAULT_TOP_N`).
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict

from .clicks import DEFAULT_RADIUS
from .guided_upsample import DEFAULT_EPS as GUIDE_EPS
from .guided_upsample import DEFAULT_RADIUS as GUIDE_RADIUS

#: the smallest and largest image side (pixels) the model takes
MIN_SIDE = 32
MAX_SIDE = 8000
#: the values of ``PredictorConfig.click_merge``
CLICK_MERGES = ("off", "local", "guard")


@dataclass(frozen=True)
class PredictorConfig:
    """How the :class:`~clickmatte.model.Predictor` answers clicks.

    - ``working_size``: long side (px, >= :data:`MIN_SIDE`) at which the coarse network runs; alpha and
      uncertainty are upsampled to the full image size.
    - ``flip_tta``: also run the coarse network on the mirrored image and average both alphas.
    - ``prior_pass``: without a previous alpha, first answer without one and feed that answer back
      as the previous alpha of a second pass.
    - ``guided``: upsample the coarse alpha of an image larger than ``working_size`` along the image's
      own edges (fast guided filter, ``guide_radius`` working pixels, ridge ``guide_eps``) instead of
      bilinearly.
    - ``context_size``: long side (px) of a first, coarser pass whose answer is the previous alpha of
      the working-size pass; applies to working images larger than it. 0 = off, else >= :data:`MIN_SIDE`.
    - ``refine_max_soft``: when the coarse pass ran at the image's own size, automatic refinement
      (no regions, no mask) only picks patches whose coarse alpha is at most this fraction soft
      (``0.05 < alpha < 0.95``). In [0, 1]; 1 = no limit. Refining chosen regions is never limited.
    - ``preview_working_size``: long side (px, >= :data:`MIN_SIDE`) of the one pass of a live preview.
    - ``refine_batch``: patches the refiner runs at once (>= 1).
    - ``radius``: click-disk radius in working-resolution pixels (> 0).
    - ``click_merge``: how a new answer combines with a given previous alpha
      (:mod:`~clickmatte.model.inference.local_merge`): ``"off"`` takes the new answer as it is;
      ``"local"`` keeps it only in the regions the clicks pull towards their label; ``"guard"`` keeps it
      everywhere except where it moves a sure part a click stands on against that click's label.
    """

    working_size: int = 512
    flip_tta: bool = True
    prior_pass: bool = True
    guided: bool = True
    context_size: int = 224
    refine_max_soft: float = 0.05
    preview_working_size: int = 256
    refine_batch: int = 16
    radius: float = DEFAULT_RADIUS
    guide_radius: int = GUIDE_RADIUS
    guide_eps: float = GUIDE_EPS
    click_merge: str = "off"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kinds = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}[str(f.type)]
            if isinstance(value, bool) != (kinds == (bool,)) or not isinstance(value, kinds):
                raise ValueError(f"{f.name} must be {f.type}, got {value!r}")
        if self.click_merge not in CLICK_MERGES:
            raise ValueError(f"click_merge must be one of {', '.join(CLICK_MERGES)}, got {self.click_merge!r}")
        if self.working_size < MIN_SIDE:
            raise ValueError(f"working_size must be >= {MIN_SIDE}, got {self.working_size}")
        if self.context_size != 0 and self.context_size < MIN_SIDE:
            raise ValueError(f"context_size must be 0 (off) or >= {MIN_SIDE}, got {self.context_size}")
        if not 0.0 <= self.refine_max_soft <= 1.0:
            raise ValueError(f"refine_max_soft must be within [0, 1] (1 = no limit), got {self.refine_max_soft}")
        if self.preview_working_size < MIN_SIDE:
            raise ValueError(f"preview_working_size must be >= {MIN_SIDE}, got {self.preview_working_size}")
        if self.refine_batch < 1:
            raise ValueError(f"refine_batch must be >= 1, got {self.refine_batch}")
        if not self.radius > 0:
            raise ValueError(f"radius must be > 0, got {self.radius}")
        if self.guide_radius < 1 or not self.guide_eps > 0:
            raise ValueError(f"guide_radius must be >= 1 and guide_eps > 0, got {self.guide_radius}, {self.guide_eps}")

    def replace(self, **changes: Any) -> "PredictorConfig":
        """A copy with ``changes`` (field names; ValueError for unknown names or bad values)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown predictor setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    def as_dict(self) -> Dict[str, Any]:
        """Every setting as plain JSON types (what the daemon's hello and the evaluation report show)."""
        return asdict(self)


#: the settings with a command-line flag (daemon, ``clickmatte-eval``, benchmarks), and what each does
FLAG_HELP: Dict[str, str] = {
    "working_size": "long side of the coarse network input in pixels",
    "flip_tta": "run the coarse network once, not also on the mirrored image (faster, slightly worse)",
    "prior_pass": "no extra first pass when there is no previous alpha to feed back (faster first click, "
                  "slightly worse)",
    "guided": "upsample the coarse alpha bilinearly instead of along the image's edges (guided filter; "
              "only images larger than --working-size are affected)",
    "context_size": "long side of a first, coarser network pass whose answer the working-size pass refines: "
                    "keeps objects that fill the photo whole (images larger than N only; 0 = off)",
    "refine_max_soft": "when the coarse pass ran at the image's own size (images up to --working-size), "
                       "automatic refinement only picks patches whose matte is at most this fraction soft "
                       "(0.05 < alpha < 0.95); 1 = no limit; refining a selection is never limited",
    "click_merge": "with a previous alpha: off = take the new answer as it is; local = change the matte only "
                   "in the connected regions the clicks pull towards their label; guard = keep the new answer "
                   "except where it moves a sure part a click stands on against that click",
}
_METAVAR = {"working_size": "N", "context_size": "N", "refine_max_soft": "F", "click_merge": "MODE"}
_CHOICES = {"click_merge": CLICK_MERGES}


def add_predictor_arguments(parser: argparse.ArgumentParser, defaults: PredictorConfig = PredictorConfig()) -> None:
    """Add the flags of :data:`FLAG_HELP` to ``parser``: ``--working-size N``, ``--no-flip-tta``,
    ``--no-prior-pass``, ``--no-guided``, ``--context-size N``, ``--refine-max-soft F``,
    ``--click-merge MODE`` (a switch off by default is ``--NAME``, one on by default ``--no-NAME``), each help text
    ending with its default from ``defaults`` (the same text under argparse's default and
    ``ArgumentDefaultsHelpFormatter``)."""
    group = parser.add_argument_group("inference settings")
    for name, text in FLAG_HELP.items():
        value = getattr(defaults, name)
        if isinstance(value, bool):  # the default goes to the parser, so no formatter adds "(default: True)"
            parser.set_defaults(**{name: value})
            flag = f"--no-{name.replace('_', '-')}" if value else f"--{name.replace('_', '-')}"
            group.add_argument(flag, dest=name, action="store_false" if value else "store_true",
                               default=argparse.SUPPRESS, help=f"{text} (default: {'on' if value else 'off'})")
        else:
            group.add_argument(f"--{name.replace('_', '-')}", dest=name, type=type(value), default=value,
                               choices=_CHOICES.get(name), metavar=_METAVAR[name],
                               help=f"{text} (default: %(default)s)")


def predictor_config_from_args(args: argparse.Namespace, base: PredictorConfig = PredictorConfig()) -> PredictorConfig:
    """``base`` with the values of the :func:`add_predictor_arguments` flags in ``args``; ValueError (one
    line, naming the flag) for values :class:`PredictorConfig` refuses."""
    changes = {name: getattr(args, name) for name in FLAG_HELP}
    try:
        return base.replace(**changes)
    except ValueError as exc:
        flag = next((n for n in FLAG_HELP if str(exc).startswith(n)), None)
        raise ValueError(f"--{flag.replace('_', '-')}: {exc}" if flag else str(exc)) from None
