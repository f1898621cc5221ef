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


def test_transformers_models_are_read_through_a_logits_view():
    """A ``transformers`` model returns an output object; unwrap_model gives a LogitsView of it
    (names unchanged), anything else comes back as it is, and an output without .logits is refused."""
    import pytest

    transformers = pytest.importorskip("transformers")
    from methods._internal.score_view import LogitsView, as_logits_model
    from methods._internal.torch_utils import unwrap_model
    from methods.errors import RecorderError

    config = transformers.ViTConfig(
        image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8
    )
    model = transformers.ViTForImageClassification(config).eval()
    view, default = unwrap_model(model)
    assert isinstance(view, LogitsView) and default is None
    assert [n for n, _ in view.named_modules()][1:] == [n for n, _ in model.named_modules()][1:]
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(view(x), model(x).logits)
    plain = torch.nn.Linear(2, 2)
    assert as_logits_model(plain) is plain and as_logits_model(view) is view
    with pytest.raises(RecorderError, match="no .logits tensor"):
        LogitsView(plain).read(torch.zeros(1, 2))
