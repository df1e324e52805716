import pytest
import torch

from clickmatte.model.registry import CheckpointError, build_model, load_checkpoint, save_checkpoint


def test_checkpoint_round_trip(tmp_path, small_model):
    p = tmp_path / "m.pt"
    save_checkpoint(small_model, p, meta={"steps": 3, "note": "test"})
    m2 = load_checkpoint(p)
    assert m2.name == "clickmatte-lite0-small" and m2.meta == {"steps": 3, "note": "test"}
    for (k, a), (_, b) in zip(small_model.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k


def test_fp16_checkpoint_loads_close(tmp_path, small_model):
    p = tmp_path / "m16.pt"
    save_checkpoint(small_model, p, half=True)
    m2 = load_checkpoint(p)
    w = small_model.state_dict()["net.encoder._conv_stem.weight"]
    w2 = m2.state_dict()["net.encoder._conv_stem.weight"]
    assert w2.dtype == torch.float32
    torch.testing.assert_close(w, w2, atol=1e-3, rtol=1e-3)


def test_build_model_with_checkpoint(tmp_path, small_model):
    p = tmp_path / "m.pt"
    save_checkpoint(small_model, p)
    assert build_model("clickmatte-lite0", checkpoint=p).name == "clickmatte-lite0-small"


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope")


def test_missing_corrupt_and_incompatible_checkpoints(tmp_path, small_model):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a clickmatte checkpoint"):
        load_checkpoint(other)
    # right format, wrong tensors: a checkpoint of the big model claiming the small config
    big = build_model("clickmatte-lite0")
    p = tmp_path / "mismatch.pt"
    save_checkpoint(big, p)
    payload = torch.load(p, weights_only=True)
    payload["config"] = small_model.config_dict()
    torch.save(payload, p)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(p)
