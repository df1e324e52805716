"""The fixed dev split of ``comp1k_crops`` (kept out of training; report on it).

Many crops show the same foreground object, and the provenance file does not say which, so crops
were grouped by their ground-truth alpha (40x40 thumbnails, normalised correlation > 0.9, connected
components); whole groups of at most 10 crops, in the order of the SHA-256 of their first name, went
into the dev split until it held >= 48 crops. The list is frozen here so that it never changes.
"""
from __future__ import annotations

DEV_NAMES: tuple[str, ...] = (
    "004.png", "022.png", "025.png", "038.png", "040.png", "041.png", "051.png", "052.png",
    "058.png", "062.png", "072.png", "073.png", "082.png", "087.png", "099.png", "124.png",
    "155.png", "158.png", "187.png", "192.png", "201.png", "206.png", "207.png", "211.png",
    "212.png", "213.png", "216.png", "219.png", "240.png", "241.png", "245.png", "247.png",
    "248.png", "251.png", "256.png", "257.png", "275.png", "277.png", "293.png", "299.png",
    "334.png", "347.png", "353.png", "354.png", "370.png", "371.png", "377.png", "384.png",
)


def dev_names() -> list[str]:
    """Names (``NNN.png``) of the dev crops."""
    return list(DEV_NAMES)


def train_names(all_names: list[str]) -> list[str]:
    """``all_names`` without the dev crops."""
    dev = set(DEV_NAMES)
    return [n for n in all_names if n not in dev]
