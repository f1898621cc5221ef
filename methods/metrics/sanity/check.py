"""The model-parameter randomization test (Adebayo et al. 2018): does a map depend on the weights?

"Sanity Checks for Saliency Maps" (Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim, NeurIPS 2018,
https://arxiv.org/abs/1810.03292): a saliency method that gives the same map once the model's
weights are destroyed explains the image, not the model. The test re-initialises the model's
blocks ``B_1 .. B_n`` (logits layer first, :mod:`methods.metrics.sanity.randomize`) on a DEEP COPY:

* ``mode="cascading"``: step ``k`` re-initialises ``B_1 .. B_k`` (top down, accumulating);
* ``mode="independent"``: step ``k`` re-initialises ``B_k`` alone (the others trained).

At every step ``k = 0 .. n`` (step 0 = the trained model) the SAME layer is explained for the
SAME class ``c`` (the trained model's top-1 unless given): ``M_k``, the raw map, and
``p_k = softmax(f_k(x))_c``. The similarity of ``M_k`` to ``M_0`` is measured four ways
(:mod:`methods.metrics.agreement.similarity`: Spearman of the raw maps and of ``|M|``, SSIM, HOG), on the
input's grid. A method PASSES when its map decorrelates as the weights go.

The caller's model is never touched: not its weights, buffers, train/eval flags or
``requires_grad`` flags (the copy is made first; the test proves it bit for bit).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from methods._internal.checks import check_choice, check_int, check_number, size2
from methods._internal.progress import Progress
from methods._internal.torch_utils import check_input, unwrap_model
from methods.cams.core.explain import explain_many
from methods.cams.core.layers import default_layer
from methods.cams.core.recorder import resolve_modules
from methods.cams.core.registry import create_method
from methods.errors import OptionError
from methods.metrics.agreement.similarity import SIMILARITIES, SIMILARITY_LABELS, similarity_to
from methods.metrics.sanity.randomize import Block, block_seed, check_blocks, default_blocks, reinitialise

__all__ = ["PAPER", "MODES", "SanityResult", "Verdict", "sanity_check"]

PAPER = "https://arxiv.org/abs/1810.03292"
MODES: tuple[str, ...] = ("cascading", "independent")


@dataclass(frozen=True)
class Verdict:
    """A plain-language verdict of a sanity check (what a page shows beside the chart).

    Attributes:
        passes: True (the map depends on the model / the class), False (it does not), None
            (cannot tell: the reference map is constant).
        metric: the similarity measure judged.
        value: its value at the judged step.
        threshold: the map passes when ``value < threshold``.
        step: the judged step (index into the result's ``steps`` / classes).
        criterion: the rule in words.
        text: one or two sentences for a person.
        paper: the paper's link.
    """

    passes: bool | None
    metric: str
    value: float
    threshold: float
    step: int
    criterion: str
    text: str
    paper: str = PAPER


@dataclass(frozen=True, eq=False)
class SanityResult:
    """The maps and similarities of one model-parameter randomization test.

    Attributes:
        method: registry key; ``label``: its display name.
        layer: the explained layer (the same at every step).
        target: the explained class (the same at every step).
        mode: ``"cascading"`` or ``"independent"``.
        seed: the seed of the re-initialisations.
        steps: step names: ``"trained"`` then each block's name (steps[k] = the block
            re-initialised at step k; in cascading mode all blocks before it are random too).
        blocks: the :class:`Block` of each step after the first (``len(steps) - 1`` of them).
        maps: raw (h, w) float32 map of each step.
        probs: (n+1,) softmax probability of ``target`` at each step.
        similarity: measure -> (n+1,) float64 similarity of each step's map to the trained one
            (:data:`methods.metrics.agreement.similarity.SIMILARITIES`); entry 0 is 1.0.
        grid: the grid the similarities were measured on (the input size by default).
        notes: what the user should know: the trained map's own notes (``Explanation.notes``: a
            partly guided rule, a signed layer ...) and a constant trained map.
    """

    method: str
    label: str
    layer: str
    target: int
    mode: str
    seed: int
    steps: tuple[str, ...]
    blocks: tuple[Block, ...]
    maps: tuple[torch.Tensor, ...]
    probs: np.ndarray
    similarity: dict[str, np.ndarray]
    grid: tuple[int, int]
    notes: tuple[str, ...] = field(default=())

    @property
    def randomized_fraction(self) -> np.ndarray:
        """(n+1,) share of blocks random at each step: ``k / n`` (cascading) - the chart's x axis."""
        n = len(self.blocks)
        return np.arange(n + 1) / max(n, 1)

    def verdict(self, *, metric: str = "spearman", threshold: float = 0.5, fraction: float = 0.5) -> Verdict:
        """Pass or fail, cascading mode: the map passes when ``similarity[metric]`` is below
        ``threshold`` at the first step with at least ``fraction`` of the blocks random,
        ``k = max(1, ceil(fraction * n))`` (default: Spearman below 0.5 once the top half of the
        blocks is random).

        Raises:
            OptionError: independent mode (no order to judge), an unknown metric, bad numbers.
        """
        if self.mode != "cascading":
            raise OptionError(
                "a verdict needs mode='cascading' (in independent mode each step randomizes one "
                "block and there is no 'top half' to judge); rerun with mode='cascading'"
            )
        metric = check_choice("metric", metric, SIMILARITIES)
        threshold = check_number("threshold", threshold, minimum=-1.0, maximum=1.0)
        fraction = check_number("fraction", fraction, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        n = len(self.blocks)
        k = max(1, math.ceil(fraction * n - 1e-9))
        value = float(self.similarity[metric][k])
        what = SIMILARITY_LABELS[metric]
        criterion = f"{what} with the trained map below {threshold:g} once the top {k} of {n} blocks are random"
        if _is_constant(self.maps[0]):
            return Verdict(
                None,
                metric,
                value,
                threshold,
                k,
                criterion,
                f"{self.label}: cannot tell - its map of the trained model is constant.",
            )
        if value < threshold:
            text = (
                f"{self.label} passes: its map decorrelates as the weights are destroyed ({what} {value:.2f} "
                f"< {threshold:g} once the top {k} of {n} blocks are random), so it depends on what the model "
                "learned."
            )
        else:
            text = (
                f"{self.label} fails: its map stays similar with the top {k} of {n} blocks random ({what} "
                f"{value:.2f} >= {threshold:g}): it shows the image more than the model."
            )
        return Verdict(value < threshold, metric, value, threshold, k, criterion, text)


def _is_constant(m: torch.Tensor) -> bool:
    return bool(torch.all(m == m.reshape(-1)[0]))


def sanity_check(
    model: Any,
    x: torch.Tensor,
    *,
    method: str = "gradcam",
    layer: str | None = None,
    target: int | None = None,
    mode: Literal["cascading", "independent"] = "cascading",
    seed: int = 0,
    blocks: Sequence[Any] | None = None,
    options: Mapping[str, Any] | None = None,
    size: int | Sequence[int] | None = None,
    progress: Progress | None = None,
) -> SanityResult:
    """Run the model-parameter randomization test of Adebayo et al. 2018 on one image.

    Args:
        model: an ``nn.Module`` returning logits, or a :class:`methods.LoadedModel`; never
            modified (the test works on a deep copy).
        x: ONE preprocessed image, (1, C, H, W).
        method: a registry key (every registered method works, with its ``options``).
        layer: the explained layer (default: the model's default layer).
        target: the explained class (default: the trained model's top-1), kept at every step.
        mode: ``"cascading"`` (top down, accumulating) or ``"independent"`` (one block at a time).
        seed: seed of the re-initialisations (>= 0); the same seed repeats the test exactly.
        blocks: the steps, top block first: module names, or lists of names re-initialised
            together (default :func:`methods.metrics.sanity.randomize.default_blocks`).
        options: the method's keyword options.
        size: the grid of the similarities (default: the input size).
        progress: ``(done, total)`` after each step (a :class:`methods._internal.progress.ProgressTracker`
            can cancel between steps).

    Returns:
        A :class:`SanityResult` (``.verdict()`` gives pass / fail in words).

    Raises:
        InputError, LayerError, TargetError, OptionError, UnknownMethodError (GradLensError);
        Cancelled when the progress callback cancels.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> res = sanity_check(net, torch.rand(1, 3, 16, 16), method="gradcam", layer="1")
        >>> res.steps, float(res.similarity["spearman"][0])
        (('trained', '6', '2', '0'), 1.0)
    """
    net, loaded_default = unwrap_model(model)
    check_input(x, batch=1)
    check_choice("mode", mode, MODES)
    seed = check_int("seed", seed, 0)
    if options is not None and not isinstance(options, Mapping):
        raise OptionError(f"options must be a dict of the method's keyword options; got {options!r}")
    configured = create_method(method, **dict(options or {}))
    input_size = (int(x.shape[-2]), int(x.shape[-1]))
    layer = layer if layer is not None else (loaded_default or default_layer(net, input_size))
    resolve_modules(net, [layer])  # a bad name fails here, with suggestions
    steps = default_blocks(net, input_size) if blocks is None else check_blocks(net, blocks)

    work = copy.deepcopy(net)  # everything below happens to the copy
    name = configured.spec.name

    said: list[str] = []

    def run(cls: int | None) -> tuple[torch.Tensor, int, float]:
        exp = explain_many(work, x, [configured], layers=[layer], target=cls)[name]
        t = int(exp.targets[0])
        said.extend(n for n in exp.notes if n not in said)
        return exp.maps[layer][0], t, float(exp.probs[0, t])

    map0, cls, p0 = run(target)
    trained_notes = list(said)  # what the method said about the trained model's map
    maps, probs = [map0], [p0]
    trained = {k: v.clone() for k, v in work.state_dict().items()} if mode == "independent" else None
    for i, block in enumerate(steps):
        reinitialise(work, block, seed=block_seed(seed, i))
        m, _, p = run(cls)
        maps.append(m)
        probs.append(p)
        if trained is not None:
            work.load_state_dict(trained)
        if progress is not None:
            progress(i + 1, len(steps))
    grid = input_size if size is None else size2(size, "size")
    sims = similarity_to(map0, maps, size=grid)
    notes = trained_notes
    if _is_constant(map0):
        notes.append("the trained model's map is constant: similarities to it mean nothing")
    return SanityResult(
        method=name,
        label=configured.spec.label,
        layer=layer,
        target=cls,
        mode=mode,
        seed=seed,
        steps=("trained",) + tuple(b.name for b in steps),
        blocks=tuple(steps),
        maps=tuple(maps),
        probs=np.array(probs, dtype=np.float64),
        similarity=sims,
        grid=grid,
        notes=tuple(notes),
    )
