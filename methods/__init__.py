"""GradLens: class activation maps for convolutional networks.

The public face of the library::

    import methods
    exp = methods.explain(model, x, "gradcam", layers=None, target=None)
    maps = methods.explain_many(model, x, methods=["gradcam", "gradcampp"], layers="all")
    [spec.name for spec in methods.list_methods()]

The rooms behind it (each imports only from rooms below it):

==================  =====================================================================
``errors``          every exception class; all derive from :class:`GradLensError`
``_internal``       private to methods/: torch helpers, input checks, device, progress, files
``runtime``         the public face of where and how work runs (device, precision, progress)
``cams``            registry, options, recorder, layers, explain, the methods
``viz``             normalization, rendering, display ranges
``models``          LoadedModel, the catalog, checkpoints, the bundled scene networks
``data``            safe image input, the synthetic scenes, the sample gallery
``metrics``         faithfulness, perturbation, localization, map agreement, model comparison,
                    sanity checks
``review``          the snapshot store and its reports
``pipeline``        the data-set loops below both faces: evaluate(), run_batch(), engines, manifests
``cli``             argparse only: the ``gradlens`` command and the README method table
==================  =====================================================================

Method discovery is explicit: the imports below register the built-in methods. A user's module
registers its own with :func:`register_method` the same way.
"""

# The built-in methods: importing registers them, in THIS order (25 in all), the order of every menu;
# first, before anything else imports a method module (faithfulness imports the baselines).
# isort: off
from methods.cams import gradient as _gradient  # noqa: F401  Grad-CAM, ++, XGrad, HiRes, Layer, Eigen-Grad, element-wise
from methods.cams import smoothpp as _smoothpp  # noqa: F401  Smooth Grad-CAM++
from methods.cams import cam as _cam  # noqa: F401  CAM
from methods.cams import score as _score  # noqa: F401  Score-CAM, SS-CAM, IS-CAM, Ablation-CAM
from methods.cams import guided as _guided  # noqa: F401  Guided Backprop, Guided Grad-CAM
from methods.cams import fullgrad as _fullgrad  # noqa: F401  FullGrad
from methods.cams import perturb as _perturb  # noqa: F401  RISE, Occlusion
from methods.cams import drise as _drise  # noqa: F401  D-RISE (detection targets)
from methods.cams import baselines as _baselines  # noqa: F401  Eigen-CAM, Random, Centre
from methods.cams.transformer import rollout as _rollout  # noqa: F401  Attention rollout
from methods.cams.transformer import chefer as _chefer  # noqa: F401  Chefer relevance
from methods.cams.transformer import legrad as _legrad  # noqa: F401  LeGrad
# isort: on

from methods import targets
from methods._internal.allocator import keep_large_blocks
from methods._internal.torch_utils import PRECISION_ENV, bf16_is_native, resolve_precision
from methods.cams.core.base import (
    CallContext,
    CamMethod,
    ForwardMethod,
    GradientMethod,
    LayerContext,
    PixelMethod,
    RecordedMethod,
    RecordingNeeds,
)
from methods.cams.core.blocks import block_layers
from methods.cams.core.explain import Explanation, explain, explain_many
from methods.cams.core.fusion import FusedExplanation, explain_fused, fuse_layer_maps
from methods.cams.core.layers import LayerInfo, candidate_layers, default_layer
from methods.cams.core.options import Options, option
from methods.cams.core.recorder import Recording, record
from methods.cams.core.registry import MethodSpec, create_method, get_method, list_methods, register_method
from methods.data.images import load_image
from methods.errors import (
    GradLensError,
    GradLensWarning,
    HeadError,
    LayerError,
    OptionError,
    RecorderError,
    TargetError,
    UnknownMethodError,
)
from methods.metrics.agreement.compare import LayerSimilarity, layer_similarity
from methods.metrics.agreement.maps import Agreement, map_agreement
from methods.metrics.agreement.matching import LayerMatch, matched_layers
from methods.metrics.agreement.metric_agreement import MetricAgreement, metric_agreement
from methods.metrics.benchmark.leaderboard import bootstrap_interval, leaderboard, per_class, sign_test
from methods.metrics.faithfulness.confidence import confidence_change
from methods.metrics.faithfulness.curves import deletion_curve, insertion_curve, reference_curves
from methods.metrics.faithfulness.road import RoadOptions, RoadResult, road
from methods.metrics.localization import energy_pointing_game, pointing_game
from methods.metrics.objects import ObjectScores, object_scores
from methods.metrics.sanity.check import SanityResult, Verdict, sanity_check
from methods.metrics.sanity.class_check import ClassSensitivity, class_sensitivity
from methods.metrics.sanity.variants import EfficientMPRTOptions, SmoothMPRTOptions, efficient_mprt, smooth_mprt
from methods.models import LoadedModel, list_models, load_checkpoint, load_model
from methods.viz.normalize import normalize, normalize_many
from methods.viz.render import COLORMAPS, render_views

__version__ = "0.3.0.dev0"
"""The package version (pyproject reads it; CHANGELOG.md says what changed)."""

__all__ = [
    "__version__",
    "keep_large_blocks",
    "targets",
    "object_scores",
    "ObjectScores",
    "GradLensError",
    "GradLensWarning",
    "OptionError",
    "UnknownMethodError",
    "LayerError",
    "HeadError",
    "TargetError",
    "RecorderError",
    "MethodSpec",
    "register_method",
    "get_method",
    "list_methods",
    "create_method",
    "Options",
    "option",
    "CamMethod",
    "RecordedMethod",
    "GradientMethod",
    "ForwardMethod",
    "PixelMethod",
    "LayerContext",
    "CallContext",
    "RecordingNeeds",
    "Recording",
    "record",
    "Explanation",
    "explain",
    "explain_many",
    "normalize",
    "normalize_many",
    "COLORMAPS",
    "render_views",
    "LayerInfo",
    "candidate_layers",
    "default_layer",
    "block_layers",
    "load_image",
    "LoadedModel",
    "list_models",
    "load_model",
    "load_checkpoint",
    "deletion_curve",
    "insertion_curve",
    "reference_curves",
    "confidence_change",
    "pointing_game",
    "energy_pointing_game",
    "Agreement",
    "map_agreement",
    "LayerMatch",
    "matched_layers",
    "LayerSimilarity",
    "layer_similarity",
    "SanityResult",
    "Verdict",
    "sanity_check",
    "ClassSensitivity",
    "class_sensitivity",
    "leaderboard",
    "per_class",
    "bootstrap_interval",
    "sign_test",
    "bf16_is_native",
    "resolve_precision",
    "PRECISION_ENV",
    "FusedExplanation",
    "explain_fused",
    "fuse_layer_maps",
    "road",
    "RoadOptions",
    "RoadResult",
    "smooth_mprt",
    "SmoothMPRTOptions",
    "efficient_mprt",
    "EfficientMPRTOptions",
    "metric_agreement",
    "MetricAgreement",
]
