"""A view of a model whose forward returns the (N, K) scores GradLens explains.

Every method in GradLens explains a column of an (N, K) score tensor: a classifier's logits. A
model that returns something else — a Hugging Face output object with ``.logits``, a detector's
list of box dicts, a segmenter's per-pixel logits — is explained through a :class:`ScoreView`: a
module that runs the model unchanged and turns its output into (N, K) scores.

The view SHARES the model's submodules, parameters and buffers (the same dict objects), so every
layer keeps its name (``blocks.11.norm1``, not ``model.blocks.11.norm1``), hooks placed on the
view's modules fire inside the model's own forward, and nothing is copied. ``train``/``eval`` on
the view set the wrapped model's own flag (the view's ``training`` IS that flag) (torchvision's detectors branch on
``self.training`` at the top level).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from methods.errors import RecorderError

__all__ = ["LogitsView", "ScoreView", "as_logits_model", "inner_model", "is_transformers_model"]


class ScoreView(nn.Module):
    """Runs ``model`` and returns :meth:`read` of its output: (N, K) float scores.

    Subclasses implement :meth:`read`. ``named_modules()`` of the view equals the model's, except
    that the root ``""`` is the view itself.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_wrapped", model)  # not a child: names keep no prefix
        self._modules = model._modules
        self._parameters = model._parameters
        self._buffers = model._buffers

    @property
    def wrapped(self) -> nn.Module:
        """The model this view runs."""
        wrapped: nn.Module = self.__dict__["_wrapped"]
        return wrapped

    @property
    def training(self) -> bool:
        """The wrapped model's own flag: the view has none of its own, so saving and restoring
        the flags of ``view.modules()`` restores the wrapped model's too."""
        wrapped = self.__dict__.get("_wrapped")
        return bool(wrapped.training) if wrapped is not None else True

    @training.setter
    def training(self, mode: bool) -> None:
        wrapped = self.__dict__.get("_wrapped")
        if wrapped is not None:
            wrapped.training = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K) scores of the wrapped model on ``x``."""
        return self.read(self.wrapped(x))

    def read(self, output: Any) -> torch.Tensor:
        """The (N, K) scores in the model's raw ``output``; subclasses define it."""
        raise NotImplementedError


def inner_model(model: nn.Module) -> nn.Module:
    """The model under any number of :class:`ScoreView` layers (the model itself otherwise)."""
    while isinstance(model, ScoreView):
        model = model.wrapped
    return model


class LogitsView(ScoreView):
    """A view that reads ``.logits`` from the output object of a Hugging Face ``transformers``
    image classifier (``ImageClassifierOutput`` and the like): (N, K) scores."""

    def read(self, output: Any) -> torch.Tensor:
        logits = getattr(output, "logits", None)
        if not isinstance(logits, torch.Tensor):
            raise RecorderError(
                f"the model returned {type(output).__name__}, which has no .logits tensor; wrap the model in a "
                "ScoreView of its own that reads its (N, K) scores"
            )
        return logits


def is_transformers_model(model: nn.Module) -> bool:
    """``model`` is a Hugging Face ``transformers`` ``PreTrainedModel`` (checked by class, without
    importing transformers)."""
    return any(
        cls.__name__ == "PreTrainedModel" and cls.__module__.startswith("transformers.") for cls in type(model).__mro__
    )


def as_logits_model(model: nn.Module) -> nn.Module:
    """``model`` itself, or a :class:`LogitsView` of it when it is a ``transformers`` model.

    Examples:
        >>> net = nn.Linear(2, 3)
        >>> as_logits_model(net) is net
        True
    """
    if isinstance(model, ScoreView) or not is_transformers_model(model):
        return model
    return LogitsView(model)
