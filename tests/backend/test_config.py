"""Daemon command line -> DaemonConfig."""
from __future__ import annotations

import pytest

from clickmatte.backend.config import ConfigError, parse_config
from clickmatte.model.inference.config import PredictorConfig


def test_defaults_and_flip_tta_switch():
    from clickmatte.model.inference.config import PredictorConfig

    cfg = parse_config([])
    assert cfg.predictor == PredictorConfig()  # the daemon runs the library's defaults
    assert cfg.predictor.flip_tta is True and cfg.predictor.working_size == 512
    assert parse_config(["--no-flip-tta"]).predictor.flip_tta is False
    assert cfg.predictor.prior_pass is True and parse_config(["--no-prior-pass"]).predictor.prior_pass is False
    assert cfg.predictor.guided is True and parse_config(["--no-guided"]).predictor.guided is False
    assert parse_config(["--working-size", "384"]).predictor.working_size == 384


def test_context_size_default_switch_and_check():
    assert parse_config([]).predictor.context_size == PredictorConfig().context_size  # the one default
    assert parse_config(["--context-size", "0"]).predictor.context_size == 0
    assert parse_config(["--context-size", "400"]).predictor.context_size == 400
    with pytest.raises(ConfigError, match="context-size"):
        parse_config(["--context-size", "16"])


def test_refine_max_soft_default_switch_and_check():
    assert parse_config([]).predictor.refine_max_soft == 0.05
    assert parse_config(["--refine-max-soft", "1"]).predictor.refine_max_soft == 1.0
    with pytest.raises(ConfigError, match="refine-max-soft"):
        parse_config(["--refine-max-soft", "1.5"])


def test_working_size_is_checked():
    with pytest.raises(ConfigError, match="working-size"):
        parse_config(["--working-size", "16"])


def test_queue_and_refine_limits_defaults_and_checks():
    cfg = parse_config([])
    assert cfg.max_queue_bytes == 2 * cfg.max_message_bytes  # two of the largest messages
    assert cfg.rcv_hwm == 3 and cfg.max_top_n == 1024 and cfg.max_region_pixels == 16_000_000
    small = parse_config(["--max-image-mp", "4", "--max-queue-mb", "96"])
    assert small.max_queue_bytes == 96 * 2 ** 20 and small.rcv_hwm == 96 * 2 ** 20 // small.max_message_bytes + 1
    assert parse_config(["--max-queue-mb", "1"]).rcv_hwm == 2  # never below 2
    for bad, word in ((["--max-queue-mb", "0"], "max-queue-mb"), (["--max-top-n", "0"], "max-top-n"),
                      (["--max-top-n", "10001"], "max-top-n"), (["--max-region-mp", "0"], "max-region-mp")):
        with pytest.raises(ConfigError, match=word):
            parse_config(bad)
