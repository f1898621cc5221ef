"""ScoreView: a model seen through a view explains exactly like the same model returning logits."""

import torch
from torch import nn

from methods import explain
from methods._internal.score_view import ScoreView, inner_model
from methods._internal.torch_utils import eval_mode


class _Out:
    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits


class _ObjectNet(nn.Module):
    """Returns its logits inside an object, as Hugging Face models do."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> _Out:
        return _Out(self.fc(torch.relu(self.conv(x)).mean((2, 3))))


class _TensorNet(_ObjectNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x).logits


class _LogitsView(ScoreView):
    def read(self, output: _Out) -> torch.Tensor:
        return output.logits


def test_view_keeps_names_parameters_and_maps() -> None:
    torch.manual_seed(0)
    net = _ObjectNet()
    plain = _TensorNet()
    plain.load_state_dict(net.state_dict())
    view = _LogitsView(net)
    assert [n for n, _ in view.named_modules()] == ["", "conv", "fc"]
    assert [id(p) for p in view.parameters()] == [id(p) for p in net.parameters()]
    assert inner_model(view) is net
    x = torch.randn(2, 3, 8, 8)
    got = explain(view, x, "gradcam", layers="conv", target=3).maps["conv"]
    want = explain(plain, x, "gradcam", layers="conv", target=3).maps["conv"]
    assert torch.equal(got, want)


def test_view_mode_is_the_wrapped_models_flag() -> None:
    net = _ObjectNet().train()
    view = _LogitsView(net)
    with eval_mode(view):
        assert not net.training and not net.conv.training
    assert net.training and net.conv.training and view.training
    view.eval()
    assert not net.training and not view.training
