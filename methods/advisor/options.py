"""The Advisor's options: one frozen dataclass, validated where it is made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from methods._internal.checks import check_bool, check_choice, check_int, check_number
from methods.advisor.metrics import METRICS
from methods.advisor.normalizations import check_normalizations
from methods.errors import OptionError
from methods.metrics.faithfulness.perturbation import BASELINES, PRECISIONS

__all__ = ["AdviseOptions", "DEFAULT_METHODS", "TESTS"]

DEFAULT_METHODS: tuple[str, ...] = ("gradcam", "gradcampp", "layercam", "xgradcam", "hirescam", "guidedbackprop")
"""The grid's methods when none are named: cheap gradient methods and one pixel method (registered ones only)."""
TESTS: tuple[str, ...] = ("auto", "wilcoxon", "sign")


@dataclass(frozen=True)
class AdviseOptions:
    """What the Advisor evaluates and how it ranks (every field is checked in ``__post_init__``).

    Attributes:
        methods: registry keys; () = :data:`DEFAULT_METHODS` that are registered and apply. The
            reference ``random`` map is always added; ``centre`` and ``random`` cannot be named.
        layers: ``"auto"`` (the model's default layer and the last layer of up to
            ``max_layers - 1`` earlier grids), ``"default"``, ``"all"`` or names.
        max_layers: layers ``"auto"`` picks, 1 to 8.
        normalizations: keys of :data:`methods.advisor.normalizations.NORMALIZATIONS`.
        metric: the ranking metric, a key of :data:`methods.advisor.metrics.METRICS`.
        include_slow: also evaluate slow methods (score family, RISE, occlusion) named in
            ``methods``; they run after the cheap ones, in their own phase.
        n_sanity: images of the sanity check per method (0 to 10; 0 skips it).
        n_boot, level: bootstrap resamples (100 to 100 000) and interval coverage (0.5 to 0.999).
        test: paired test: ``"auto"`` (sign test for a 0/1 metric, Wilcoxon otherwise), ``"wilcoxon"``, ``"sign"``.
        alpha: significance level of the notes (0 to 0.5).
        seed: scene seed offset, reference-map seed and bootstrap seed (>= 0).
        steps, baseline, insertion_baseline, batch_size, precision: the curves' options
            (:func:`methods.metrics.faithfulness.image_scores.image_scores`).
    """

    methods: tuple[str, ...] = ()
    layers: Any = "auto"
    max_layers: int = 3
    normalizations: tuple[str, ...] = ("minmax", "raw", "max", "relu_minmax", "percentile")
    metric: str = "insertion"
    include_slow: bool = False
    n_sanity: int = 2
    n_boot: int = 2000
    level: float = 0.95
    test: str = "auto"
    alpha: float = 0.05
    seed: int = 0
    steps: int = 20
    baseline: str = "blur"
    insertion_baseline: str = "blur"
    batch_size: int = 32
    precision: str = "auto"

    def __post_init__(self) -> None:
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        object.__setattr__(self, "methods", tuple(m.strip() for m in methods if m.strip()))
        bad = [m for m in self.methods if m in ("random", "centre")]
        if bad:
            raise OptionError(f"methods {bad}: the random map is the Advisor's reference, added to every run")
        layers = self.layers
        if isinstance(layers, str):
            if layers not in ("auto", "default", "all"):
                layers = tuple(s.strip() for s in layers.split(",") if s.strip())
        else:
            layers = tuple(layers)
        if not layers:
            raise OptionError("layers is empty: give 'auto', 'default', 'all' or module names")
        object.__setattr__(self, "layers", layers)
        norms = (self.normalizations,) if isinstance(self.normalizations, str) else self.normalizations
        object.__setattr__(self, "normalizations", check_normalizations(norms))
        check_choice("metric", self.metric, tuple(METRICS))
        check_int("max_layers", self.max_layers, 1, 8)
        check_bool("include_slow", self.include_slow)
        check_int("n_sanity", self.n_sanity, 0, 10)
        check_int("n_boot", self.n_boot, 100, 100_000)
        check_number("level", self.level, minimum=0.5, maximum=0.999)
        check_choice("test", self.test, TESTS)
        check_number("alpha", self.alpha, minimum=0.0, maximum=0.5, exclusive_minimum=True)
        check_int("seed", self.seed, 0)
        check_int("steps", self.steps, 2, 200)
        check_choice("baseline", self.baseline, BASELINES)
        check_choice("insertion_baseline", self.insertion_baseline, BASELINES)
        check_int("batch_size", self.batch_size, 1, 1024)
        check_choice("precision", self.precision, PRECISIONS)

    def curve_options(self) -> dict[str, Any]:
        """The options a scorer reads (:class:`methods.advisor.metrics.ImageJob`)."""
        return dict(
            steps=self.steps,
            baseline=self.baseline,
            insertion_baseline=self.insertion_baseline,
            batch_size=self.batch_size,
            precision=self.precision,
            seed=self.seed,
        )
