"""What a request would cost before it runs: model passes x input pixels x layers.

"Slow" is a property of a request, not of a method: Smooth Grad-CAM++ with 8 samples is cheap and
with 3,000 is not; Score-CAM scoring 4 channels is cheap and scoring 512 on every layer is not.
:func:`estimate` reads the registry spec and the request's options (``num_samples``, RISE's
``num_masks``, occlusion's window count, the channels a score method scores, ``aug_smooth``'s six
views, ``eigen_smooth``'s SVD per layer, the number of layers) and returns a :class:`Cost` whose
:attr:`Cost.units` (pass-pixels) a caller compares with a budget (:data:`SMALL_BUDGET`: what the
dashboard runs without a click).

Each method class says how many passes it runs for one image with :meth:`CamMethod.passes`
(:mod:`methods.cams.core.base`), from its own validated options; nothing here lists method names.

The estimate counts a backward pass as two forwards and an SVD of a layer's activations
(Eigen-CAM, ``eigen_smooth``) as one; it ignores the model's own size (a pass of a wider model
costs more) and the batch size (batching changes seconds, not the count). It is an order of
magnitude, meant for a yes/no against a budget and a sentence for the user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from methods.cams.core.registry import get_method
from methods.errors import OptionError

__all__ = ["Passes", "Cost", "estimate", "SMALL_BUDGET", "BACKWARD_PASSES", "SVD_PASSES"]

BACKWARD_PASSES = 2
"""A backward pass counted as this many forwards."""

SVD_PASSES = 1
"""An SVD of one layer's activations counted as this many forwards."""

SMALL_BUDGET = 32 * 224 * 224
"""Pass-pixels a request may cost and still run without a click on a page opened from a link:
32 passes of a 224 x 224 input (about 98 at the bundled scenes' 128 x 128). Grad-CAM on every
layer (3 pass-equivalents), Smooth Grad-CAM++ with its default 8 samples (27) and Eigen-CAM on
every layer fit; Score-CAM on a 512-channel layer (513), RISE's 1,000 masks, occlusion's 225
windows and ``aug_smooth`` + ``eigen_smooth`` on every layer of a 16-layer net (114 at 128 px)
do not."""


@dataclass(frozen=True)
class Passes:
    """Model passes of one method for ONE image (see :meth:`methods.CamMethod.passes`).

    Attributes:
        forwards: forward passes shared by every layer of the call (the recorded pass included).
        backwards: backward passes shared by every layer.
        per_layer: forward passes for each layer (the score family: one per scored channel).
        svds: SVDs of the layer's activations, for each layer.
        views: the whole computation is repeated this many times (``aug_smooth``: 6).
        declared: False for a method registered ``slow`` that does not say how many passes it
            runs (a plugin without :meth:`~methods.CamMethod.passes`): its cost is unknown and
            counts as over every budget.
    """

    forwards: int = 1
    backwards: int = 0
    per_layer: int = 0
    svds: int = 0
    views: int = 1
    declared: bool = True


@dataclass(frozen=True)
class Cost:
    """The estimated cost of one method on some layers of some images.

    Attributes:
        method: registry key.
        passes: forward-pass equivalents for all images and layers (a backward counts
            :data:`BACKWARD_PASSES`, an SVD :data:`SVD_PASSES`).
        pixels: input pixels of one image (H x W).
        layers: layers whose maps are made.
        images: images in the request.
        known: False when the method does not declare its passes (see :attr:`Passes.declared`).
    """

    method: str
    passes: int
    pixels: int
    layers: int
    images: int = 1
    known: bool = True

    @property
    def units(self) -> int:
        """Pass-pixels: ``passes x pixels`` (the number compared with a budget)."""
        return self.passes * self.pixels

    def over(self, budget: int = SMALL_BUDGET) -> bool:
        """Whether the request costs more than ``budget`` pass-pixels (an unknown cost always does)."""
        return not self.known or self.units > budget

    def describe(self) -> str:
        """One phrase for a user: ``about 9,003 model passes of the input on 1 image(s), 1 layer(s) (...)``."""
        if not self.known:
            return f"an unknown number of model passes on {self.images} image(s), {self.layers} layer(s)"
        return (
            f"about {self.passes:,} model passes of the input on {self.images} image(s), "
            f"{self.layers} layer(s) ({self.units / SMALL_BUDGET:.1f}x the budget of a page opened from a link)"
        )


def estimate(
    method: str,
    options: Mapping[str, Any] | None = None,
    *,
    input_size: tuple[int, int],
    channels: Sequence[int],
    images: int = 1,
) -> Cost:
    """Estimated cost of ``method`` with ``options`` on layers with ``channels`` channels each.

    ``passes = images x views x (forwards + 2 backwards + sum over layers of (per_layer + svds))``
    with the method's :class:`Passes` for each layer (a layer-independent method counts its
    passes once, whatever the layers).

    Args:
        method: registry key or alias.
        options: the method's keyword options (validated: a bad value raises OptionError).
        input_size: (H, W) of the model's input.
        channels: channel count of each requested layer (one entry per layer).
        images: images in the request.

    Raises:
        UnknownMethodError, OptionError, WrongTypeError: as :func:`methods.create_method`.

    Examples:
        >>> estimate("gradcam", input_size=(224, 224), channels=[512]).passes
        3
        >>> c = estimate("smoothgradcampp", {"num_samples": 256}, input_size=(128, 128), channels=[64])
        >>> c.passes, c.over()
        (771, True)
    """
    spec = get_method(method)
    if images < 0 or any(int(c) < 0 for c in channels):
        raise OptionError(f"estimate: images={images} and channels={list(channels)} must be >= 0")
    instance: Any = spec.cls(**dict(options or {}))
    h, w = (int(v) for v in input_size)
    layer_channels = [int(c) for c in channels] or [0]
    if spec.layer_independent:
        layer_channels = layer_channels[:1]
    total, known = 0, True
    shared: Passes | None = None
    for c in layer_channels:
        p: Passes = instance.passes(channels=c, input_size=(h, w))
        shared, known = shared or p, known and p.declared
        total += p.views * (p.per_layer + p.svds * SVD_PASSES)
    assert shared is not None
    total += shared.views * (shared.forwards + shared.backwards * BACKWARD_PASSES)
    return Cost(spec.name, int(total) * int(images), h * w, len(list(channels)), int(images), known)
