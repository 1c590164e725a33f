import pytest
import torch

from ptl_ext.models import (
    BackboneNet,
    create_model,
    densenet_bc100,
    resnet34,
    save_torchvision_backbone,
    torchvision_state_dict,
)


def _trained_like(net):
    """Give every tensor (BN statistics included) non-default values, as training would."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for value in net.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
    return net


def test_export_has_torchvision_keys_and_loads_into_the_backbone_and_its_ptl_version(tmp_path):
    net = _trained_like(BackboneNet(resnet34().stages(), 7, head="cifar", head_hidden=(), input_size=(32, 16)))
    path = tmp_path / "backbone.pth"
    state = save_torchvision_backbone(path, net, resnet34())
    reference = resnet34().state_dict()
    assert list(state) == list(reference)
    assert state["fc.weight"].shape == (7, 512) and state["layer4.2.bn2.running_var"].shape == (512,)
    assert torch.equal(state["conv1.weight"], net.stages[0].conv1.weight)
    assert torch.equal(state["layer3.1.bn1.running_mean"], net.stages[3][1].bn1.running_mean)
    saved = torch.load(path, weights_only=True)
    assert all(torch.equal(saved[k], state[k]) for k in state)
    # a torchvision-style ResNet with the same classes computes what the BackboneNet computed
    plain = resnet34(pretrained=str(path), num_classes=7).eval()
    x = torch.randn(2, 3, 32, 16)
    with torch.no_grad():
        assert torch.allclose(plain(x), net.eval()(x, return_features=True)[0], atol=1e-4, rtol=1e-4)
    # --pretrained loads it into the plain backbone and into its PTL version (another head, fc dropped)
    for arch in ("resnet34", "ptl_resnet34"):
        model = create_model(arch, 5, (32, 16), pretrained=str(path))
        own = model.state_dict()
        for i, stage in enumerate(net.stages):
            for key, value in stage.state_dict().items():
                assert torch.equal(own[f"stages.{i}.{key}"], value), (arch, i, key)


def test_export_of_a_densenet_and_errors(tmp_path):
    net = _trained_like(BackboneNet(densenet_bc100().stages(), 3, head="cifar", head_hidden=(), input_size=(32, 32)))
    state = torchvision_state_dict(net, densenet_bc100())
    assert list(state) == list(densenet_bc100().state_dict()) and state["classifier.weight"].shape == (3, 342)
    reid_head = BackboneNet(resnet34().stages(), 7, input_size=(32, 16))
    with pytest.raises(ValueError, match="single linear layer"):
        torchvision_state_dict(reid_head, resnet34())
    with pytest.raises(ValueError, match="do not match"):
        torchvision_state_dict(net, resnet34())
    with pytest.raises(TypeError, match="BackboneNet"):
        torchvision_state_dict(resnet34(), resnet34())
