"""Smooth and efficient MPRT: two repairs of the model-parameter randomization test.

"Sanity Checks Revisited: An Exploration to Repair the Model Parameter Randomisation Test"
(Hedström, Weber, Lapuschkin, Höhne, 2024, https://arxiv.org/abs/2401.06465). Both compare the map
of the TRAINED model ``f`` with the map of the FULLY randomized model ``f^`` (every block of
:func:`methods.metrics.sanity.randomize.default_blocks` re-initialised, on a deep copy), for the
same image ``x`` and class ``c`` (the trained model's top-1 unless given).

* **sMPRT** (smooth MPRT): gradient noise makes the maps of ``f`` and ``f^`` look alike by
  accident; denoise both first. With ``sigma = noise * (max x - min x)`` and
  ``eps_n ~ N(0, sigma^2)`` per input value,
  ``e~(g) = (1/N) sum_{n=1}^{N} e(g, x + eps_n)`` with ``eps_N = 0`` (the clean input is one of the
  N samples), then ``sMPRT = rho_S(|e~(f)|, |e~(f^)|)``, the Spearman rank correlation of the
  flattened maps. LOW is good: the map depends on the weights.
* **eMPRT** (efficient MPRT): no similarity measure at all; a map of a random model should be
  MORE complex (noisier) than the trained one's. ``H(e)`` is the discrete entropy of the histogram
  of the map's values in ``bins`` equal-width bins over [min e, max e]
  (``H = -sum_b p_b ln p_b``, ``p_b`` = share of values in bin b), and
  ``eMPRT = H(e(f^)) / H(e(f))``; ABOVE 1 is good. Beside it, the model's own complexity rise,
  ``H(softmax f^(x)) / H(softmax f(x))`` (the entropy of the class probabilities): a map whose
  complexity rises at least as much as the model's is following the model.

The noise of sMPRT comes from ``numpy.random.RandomState(seed)``: the trained model's N - 1 noisy
inputs take the first N - 1 draws of shape x.shape, the randomized model's the next N - 1 (the
order in which Quantus 0.5.3 draws them from numpy's global generator). Inputs are explained in
chunks of ``batch_size`` (memory bounded by a chunk). The caller's model is never touched.

Deviation: the paper (and Quantus) randomize layer by layer ("bottom_up") and read the last
step; only the fully randomized model enters either score, so GradLens randomizes all blocks at
once with its own seeds (:mod:`methods.metrics.sanity.randomize`: PyTorch's ``reset_parameters``,
trained normalization statistics reset) rather than Quantus's ``torch.manual_seed(seed + 1)``
before every layer. Quantus's ``EfficientMPRT`` returns the relative rise ``eMPRT - 1``
(:attr:`EfficientMPRTResult.relative_rise`). Quantus's ``SmoothMPRT`` takes ``|e|`` after averaging
and max-normalises (which a rank correlation ignores), as here.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from methods._internal.checks import check_bool, check_int, check_number
from methods._internal.progress import Progress
from methods._internal.torch_utils import check_input, eval_mode, unwrap_model
from methods.cams.core.explain import explain_many
from methods.cams.core.layers import default_layer
from methods.cams.core.recorder import resolve_modules
from methods.cams.core.registry import create_method
from methods.errors import InputError, OptionError, WrongTypeError
from methods.metrics.sanity.randomize import block_seed, check_blocks, default_blocks, reinitialise

__all__ = [
    "PAPER",
    "MapFn",
    "SmoothMPRTOptions",
    "SmoothMPRTResult",
    "EfficientMPRTOptions",
    "EfficientMPRTResult",
    "smooth_mprt",
    "efficient_mprt",
    "method_maps",
    "randomized_model",
    "discrete_entropy",
]

PAPER = "https://arxiv.org/abs/2401.06465"

MapFn = Callable[[nn.Module, torch.Tensor, int], Any]
"""``(model, x (B, C, H, W), class) -> (B, h, w)`` maps (tensor or array): how a map is made."""


@dataclass(frozen=True)
class SmoothMPRTOptions:
    """sMPRT's options (validated on construction).

    Attributes:
        samples: N, inputs averaged per model (the clean one included), 1 .. 10000 (paper: 50).
        noise: sigma as a share of the image's value range (max - min), 0 .. 1 (paper: 0.1).
        seed: seed of the noise and of the randomization (>= 0).
        batch_size: inputs explained per call, 1 .. 1024.
        absolute: compare ``|e~|`` (the paper's and Quantus's default) rather than the signed maps.
    """

    samples: int = 50
    noise: float = 0.1
    seed: int = 0
    batch_size: int = 16
    absolute: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", check_int("samples", self.samples, 1, 10_000))
        object.__setattr__(self, "noise", check_number("noise", self.noise, minimum=0.0, maximum=1.0))
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0))
        object.__setattr__(self, "batch_size", check_int("batch_size", self.batch_size, 1, 1024))
        object.__setattr__(self, "absolute", check_bool("absolute", self.absolute))


@dataclass(frozen=True)
class EfficientMPRTOptions:
    """eMPRT's options (validated on construction).

    Attributes:
        bins: equal-width histogram bins of the entropy, 2 .. 10000 (Quantus's default 100).
        seed: seed of the randomization (>= 0).
        absolute: take ``|e|`` before the histogram (Quantus's default: no).
    """

    bins: int = 100
    seed: int = 0
    absolute: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "bins", check_int("bins", self.bins, 2, 10_000))
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0))
        object.__setattr__(self, "absolute", check_bool("absolute", self.absolute))


@dataclass(frozen=True, eq=False)
class SmoothMPRTResult:
    """sMPRT of one image.

    Attributes:
        similarity: Spearman correlation of the two averaged maps (NaN when one is constant);
            low = the map depends on the weights.
        trained, randomized: the averaged maps (h, w) float64 (absolute values when ``absolute``).
        target: the explained class; ``samples``, ``noise``, ``seed``: the options.
        notes: what to know (a constant map).
    """

    similarity: float
    trained: np.ndarray
    randomized: np.ndarray
    target: int
    samples: int
    noise: float
    seed: int
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, eq=False)
class EfficientMPRTResult:
    """eMPRT of one image.

    Attributes:
        ratio: ``H(e(f^)) / H(e(f))`` (> 1 = the map got more complex with random weights; NaN
            when the trained map's entropy is 0).
        relative_rise: ``ratio - 1`` (Quantus's ``EfficientMPRT`` score).
        entropy: (trained, randomized) explanation entropies (nats).
        model_entropy: (trained, randomized) entropies of the class probabilities.
        model_ratio: their ratio (NaN when the trained model's entropy is 0).
        trained, randomized: the two maps (h, w) float64.
        target, bins, seed: as run.
        notes: what to know.
    """

    ratio: float
    relative_rise: float
    entropy: tuple[float, float]
    model_entropy: tuple[float, float]
    model_ratio: float
    trained: np.ndarray
    randomized: np.ndarray
    target: int
    bins: int
    seed: int
    notes: tuple[str, ...] = field(default=())


def discrete_entropy(values: Any, bins: int = 100) -> float:
    """``-sum_b p_b ln p_b`` of the histogram of ``values`` in ``bins`` equal-width bins over their range.

    Examples:
        >>> round(discrete_entropy([0.0, 1.0, 2.0, 3.0], bins=4), 6) == round(math.log(4), 6)
        True
        >>> discrete_entropy([5.0, 5.0, 5.0])
        0.0
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise InputError("discrete_entropy needs a non-empty map of finite values")
    counts, _ = np.histogram(v, bins=check_int("bins", bins, 1))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum()) + 0.0


def method_maps(method: str = "gradcam", *, layer: str, options: Mapping[str, Any] | None = None) -> MapFn:
    """A :data:`MapFn` of a registered method at ``layer`` (one :func:`methods.explain_many` call per chunk)."""
    if options is not None and not isinstance(options, Mapping):
        raise OptionError(f"method_options must be a dict of the method's keyword options; got {options!r}")
    configured = create_method(method, **dict(options or {}))
    name = configured.spec.name

    def maps(model: nn.Module, xb: torch.Tensor, target: int) -> torch.Tensor:
        return explain_many(model, xb, [configured], layers=[layer], target=target)[name].maps[layer]  # (B, h, w)

    return maps


def randomized_model(
    model: Any, *, seed: int = 0, blocks: Sequence[Any] | None = None, input_size: Sequence[int] | None = None
) -> nn.Module:
    """A deep copy of the model with EVERY block re-initialised (:mod:`methods.metrics.sanity.randomize`;
    block ``i`` seeded ``block_seed(seed, i)``, as the cascading test's last step). The caller's model is untouched.

    Args:
        model: an ``nn.Module`` or a ``LoadedModel``.
        seed: >= 0.
        blocks: module names (or lists of names) to re-initialise; default: all default blocks.
        input_size: (H, W) of the probe forward that finds the default blocks (default 224 x 224).
    """
    net, _ = unwrap_model(model)
    seed = check_int("seed", seed, 0)
    size = tuple(input_size) if input_size is not None else (224, 224)
    steps = default_blocks(net, size) if blocks is None else check_blocks(net, blocks)
    work = copy.deepcopy(net)
    for i, block in enumerate(steps):
        reinitialise(work, block, seed=block_seed(seed, i))
    return work


def _setup(model: Any, x: Any, method: Any, layer: str | None, method_options: Any) -> tuple[nn.Module, MapFn]:
    net, loaded_default = unwrap_model(model)
    if not isinstance(x, torch.Tensor):
        raise InputError(f"x must be a preprocessed torch.Tensor (1, C, H, W); got {type(x).__name__}")
    check_input(x, batch=1)
    if callable(method) and not isinstance(method, str):
        return net, method
    if not isinstance(method, str):
        raise WrongTypeError(f"method must be a registry key or a MapFn callable; got {method!r}")
    size = (int(x.shape[-2]), int(x.shape[-1]))
    layer = layer if layer is not None else (loaded_default or default_layer(net, size))
    resolve_modules(net, [layer])  # a bad name fails here, with suggestions
    return net, method_maps(method, layer=layer, options=method_options)


def _as_maps(out: Any, b: int) -> np.ndarray:
    a = out.detach().double().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out, dtype=np.float64)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3 or a.shape[0] != b:
        raise InputError(f"the map function must return ({b}, h, w) maps; got shape {a.shape}")
    return a  # (B, h, w)


def _probs(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with eval_mode(net), torch.no_grad():
        out = net(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise InputError("the model must return (N, K) logits for an MPRT variant; wrap it in a ScoreView first")
    return torch.softmax(out.double(), dim=1)  # (1, K)


def _target(net: nn.Module, x: torch.Tensor, target: Any) -> int:
    p = _probs(net, x)[0]  # (K,)
    k = int(p.shape[0])
    if target is None:
        return int(p.argmax())
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= int(target) < k:
        raise OptionError(f"target must be a class index in [0, {k - 1}] or None (the top-1); got {target!r}")
    return int(target)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.all(a == a.flat[0]) or np.all(b == b.flat[0]):
        return math.nan
    return float(spearmanr(a.ravel(), b.ravel())[0])


def smooth_mprt(
    model: Any,
    x: torch.Tensor,
    *,
    method: str | MapFn = "gradcam",
    layer: str | None = None,
    target: int | None = None,
    randomized: nn.Module | None = None,
    options: SmoothMPRTOptions | None = None,
    method_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> SmoothMPRTResult:
    """sMPRT of one image (module docstring): Spearman of the noise-averaged maps of the trained and
    the fully randomized model.

    Args:
        model: an ``nn.Module`` returning logits, or a ``LoadedModel``; never modified.
        x: ONE preprocessed image (1, C, H, W).
        method: a registry key (explained at ``layer``, default the model's default layer, with
            ``method_options``) or a :data:`MapFn`.
        target: the explained class (default: the trained model's top-1), the same for both models.
        randomized: the randomized model to compare with (default :func:`randomized_model` with ``options.seed``).
        options: :class:`SmoothMPRTOptions`.
        progress: ``(done, total)`` after every chunk (total = 2 N).

    Returns:
        A :class:`SmoothMPRTResult`.

    Examples:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> res = smooth_mprt(net, torch.rand(1, 3, 8, 8), layer="1", options=SmoothMPRTOptions(samples=4))
        >>> res.trained.shape, -1.0 <= res.similarity <= 1.0
        ((8, 8), True)
    """
    opts = options if options is not None else SmoothMPRTOptions()
    if not isinstance(opts, SmoothMPRTOptions):
        raise OptionError(f"options must be a SmoothMPRTOptions; got {type(opts).__name__}")
    net, fn = _setup(model, x, method, layer, method_options)
    cls = _target(net, x, target)
    rand = randomized if randomized is not None else randomized_model(net, seed=opts.seed, input_size=x.shape[-2:])
    xd = x.detach().double().cpu().numpy()  # (1, C, H, W)
    sigma = opts.noise * float(xd.max() - xd.min())
    rng = np.random.RandomState(opts.seed)
    n, done = opts.samples, 0
    averaged: list[np.ndarray] = []
    for m in (net, rand):
        total: np.ndarray | None = None
        for start in range(0, n, opts.batch_size):
            idx = range(start, min(start + opts.batch_size, n))
            noisy = [xd + (rng.randn(*xd.shape) * sigma if i < n - 1 else 0.0) for i in idx]  # the last is clean
            xb = torch.from_numpy(np.concatenate(noisy)).to(dtype=x.dtype, device=x.device)  # (B, C, H, W)
            part = _as_maps(fn(m, xb, cls), len(idx)).sum(axis=0)  # (h, w)
            total = part if total is None else total + part
            done += len(idx)
            if progress is not None:
                progress(done, 2 * n)
        assert total is not None  # n >= 1
        avg = total / n  # (h, w)
        averaged.append(np.abs(avg) if opts.absolute else avg)
    sim = _spearman(averaged[0], averaged[1])
    notes = (
        ("one of the averaged maps is constant: the Spearman correlation is undefined (NaN)",)
        if math.isnan(sim)
        else ()
    )
    for a in averaged:
        a.setflags(write=False)
    return SmoothMPRTResult(sim, averaged[0], averaged[1], cls, n, opts.noise, opts.seed, notes)


def _entropy(p: torch.Tensor) -> float:
    q = p[p > 0]
    return float(-(q * q.log()).sum())


def efficient_mprt(
    model: Any,
    x: torch.Tensor,
    *,
    method: str | MapFn = "gradcam",
    layer: str | None = None,
    target: int | None = None,
    randomized: nn.Module | None = None,
    options: EfficientMPRTOptions | None = None,
    method_options: Mapping[str, Any] | None = None,
) -> EfficientMPRTResult:
    """eMPRT of one image (module docstring): the rise of the map's histogram entropy when every
    weight is random, beside the rise of the model's output entropy.

    Args:
        model, x, method, layer, target, randomized, method_options: as :func:`smooth_mprt`.
        options: :class:`EfficientMPRTOptions`.

    Returns:
        An :class:`EfficientMPRTResult`.

    Examples:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> res = efficient_mprt(net, torch.rand(1, 3, 8, 8), layer="1")
        >>> res.relative_rise == res.ratio - 1 or math.isnan(res.ratio)
        True
    """
    opts = options if options is not None else EfficientMPRTOptions()
    if not isinstance(opts, EfficientMPRTOptions):
        raise OptionError(f"options must be an EfficientMPRTOptions; got {type(opts).__name__}")
    net, fn = _setup(model, x, method, layer, method_options)
    cls = _target(net, x, target)
    rand = randomized if randomized is not None else randomized_model(net, seed=opts.seed, input_size=x.shape[-2:])
    maps, ent, model_ent = [], [], []
    for m in (net, rand):
        e = _as_maps(fn(m, x, cls), 1)[0]  # (h, w)
        e = np.abs(e) if opts.absolute else e
        e.setflags(write=False)
        maps.append(e)
        ent.append(discrete_entropy(e, opts.bins))
        model_ent.append(_entropy(_probs(m, x)[0]))
    notes = []
    ratio = ent[1] / ent[0] if ent[0] > 0 else math.nan
    if math.isnan(ratio):
        notes.append("the trained model's map has entropy 0 (one histogram bin): the ratio is undefined (NaN)")
    model_ratio = model_ent[1] / model_ent[0] if model_ent[0] > 0 else math.nan
    return EfficientMPRTResult(
        ratio=ratio,
        relative_rise=ratio - 1.0,
        entropy=(ent[0], ent[1]),
        model_entropy=(model_ent[0], model_ent[1]),
        model_ratio=model_ratio,
        trained=maps[0],
        randomized=maps[1],
        target=cls,
        bins=opts.bins,
        seed=opts.seed,
        notes=tuple(notes),
    )
