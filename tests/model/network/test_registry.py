import pytest
import torch

from clickmatte.model.network.registry import (
    CheckpointError, average_models, build_model, load_checkpoint, save_checkpoint,
)


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


def test_average_models_mixes_float_weights_only():
    torch.manual_seed(0)
    a = build_model("clickmatte-lite0-small", pretrained=False)
    torch.manual_seed(1)
    b = build_model("clickmatte-lite0-small", pretrained=False)
    b.meta = {"run": "b"}
    m = average_models([a, b], [0.3, 0.7])
    sa, sb, sm = a.state_dict(), b.state_dict(), m.state_dict()
    k = "refiner.enc1.0.0.weight"
    assert not torch.equal(sa[k], sb[k])
    assert torch.allclose(sm[k], 0.3 * sa[k] + 0.7 * sb[k], atol=1e-6)
    ints = [k for k, v in sb.items() if not v.is_floating_point()]
    assert ints and all(torch.equal(sm[k], sb[k]) for k in ints)
    assert m.meta == {"run": "b"} and m.meta is not b.meta


def test_average_models_refuses_bad_mixes():
    a = build_model("clickmatte-lite0-small", pretrained=False)
    big = build_model("clickmatte-lite0", pretrained=False)
    with pytest.raises(ValueError, match="sum to 1"):
        average_models([a, a], [0.5, 0.6])
    with pytest.raises(ValueError, match="one weight per model"):
        average_models([a], [0.5, 0.5])
    with pytest.raises(ValueError, match="architecture"):
        average_models([a, big], [0.5, 0.5])
