"""Embedding targets: cosine similarity to a reference embedding (retrieval, re-identification,
face verification, CLIP-style image encoders)::

    y = cos(f(x), e) = <f(x), e> / (||f(x)|| ||e||)

``f(x)`` is the model's output flattened per sample to (N, D) (a (N, D) or (N, D, 1, 1) tensor);
``e`` (D,) is the reference: an embedding given as is, or the embedding ``f(r)`` of a reference
image ``r`` (1, C, H, W) computed once, in eval mode without gradients, when the view is made.
A map then shows what in ``x`` makes it look like the reference (Stylianou et al., "Visualizing
Deep Similarity Networks", WACV 2019, https://arxiv.org/abs/1901.00536, explain the same score).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from methods._internal.torch_utils import eval_mode
from methods.errors import TargetError
from methods.targets.base import Target, TargetView

__all__ = ["EmbeddingTarget", "embeddings"]


def embeddings(output: Any) -> torch.Tensor:
    """(N, D) embeddings of a model's output: a (N, D) tensor, or (N, D, 1, ..., 1)."""
    if not isinstance(output, torch.Tensor) or output.ndim < 2 or any(s != 1 for s in output.shape[2:]):
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise TargetError(f"an EmbeddingTarget needs a model that returns (N, D) embeddings; it returned {got}")
    return output.flatten(1)


@dataclass(frozen=True, eq=False)
class EmbeddingTarget(Target):
    """Cosine similarity to a reference.

    Args:
        reference: a (D,) embedding, or a reference image (C, H, W) / (1, C, H, W) preprocessed
            like ``x`` (its embedding is computed when the view is made).

    Examples:
        >>> t = EmbeddingTarget(torch.tensor([1.0, 0.0]))
        >>> t.scores(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
        tensor([0.6000, 0.0000])
    """

    reference: torch.Tensor

    kind: ClassVar[str] = "embedding"

    def __post_init__(self) -> None:
        r = self.reference
        if not isinstance(r, torch.Tensor) or not r.is_floating_point() or r.ndim not in (1, 3, 4):
            got = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
            raise TargetError(f"reference must be a float (D,) embedding or a (1, C, H, W) image; got {got}")
        if r.ndim == 4 and r.shape[0] != 1:
            raise TargetError(f"reference image must be ONE image (1, C, H, W); got {tuple(r.shape)}")
        if not bool(torch.isfinite(r).all()):
            raise TargetError("reference holds NaN or inf")
        if r.ndim == 1 and float(r.norm()) == 0:
            raise TargetError("reference embedding is all zeros: its cosine is undefined")
        object.__setattr__(self, "reference", r.detach())

    @property
    def is_image(self) -> bool:
        return self.reference.ndim != 1

    def describe(self) -> str:
        return (
            "similarity to a reference image"
            if self.is_image
            else f"similarity to a {self.reference.numel()}-d embedding"
        )

    def embedding_of(self, model: nn.Module) -> torch.Tensor:
        """The reference embedding (D,): ``reference`` itself, or ``model``'s embedding of the image."""
        if not self.is_image:
            return self.reference
        r = self.reference if self.reference.ndim == 4 else self.reference[None]
        with eval_mode(model), torch.no_grad():
            e = embeddings(model(r))[0]
        if float(e.norm()) == 0:
            raise TargetError("the reference image's embedding is all zeros: its cosine is undefined")
        return e

    def view(self, model: nn.Module) -> TargetView:
        return TargetView(model, _Fixed(self.embedding_of(model), self))

    def scores(self, output: Any, *, strict: bool = False) -> torch.Tensor:
        if self.is_image:
            raise TargetError("a reference image has no embedding yet: use target.view(model) (explain does)")
        return _cosine(embeddings(output), self.reference)


@dataclass(frozen=True, eq=False)
class _Fixed(Target):
    """An EmbeddingTarget whose reference embedding is known (what a view scores with)."""

    embedding: torch.Tensor
    source: EmbeddingTarget

    kind: ClassVar[str] = "embedding"

    def describe(self) -> str:
        return self.source.describe()

    def scores(self, output: Any, *, strict: bool = False) -> torch.Tensor:
        return _cosine(embeddings(output), self.embedding)


def _cosine(f: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    if f.shape[1] != e.numel():
        raise TargetError(f"the model's embeddings have {f.shape[1]} dimensions but the reference has {e.numel()}")
    return F.cosine_similarity(f, e.to(f.device, f.dtype)[None], dim=1, eps=1e-12)  # (N,)
