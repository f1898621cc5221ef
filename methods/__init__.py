"""GradLens: class activation maps for convolutional networks.

The public face of the library::

    import methods
    exp = methods.explain(model, x, method="gradcam", layers=None, target=None)
    maps = methods.explain_many(model, x, methods=["gradcam", "gradcampp"], layers="all")
    [spec.name for spec in methods.list_methods()]

Method discovery is explicit: the imports below register the built-in methods. A user's module
registers its own with :func:`register_method` the same way.
"""

from .errors import GradLensError
from .registry import MethodSpec, UnknownMethodError, create_method, get_method, list_methods, register_method
from .base import CamMethod, ForwardMethod, GradientMethod, LayerContext, RecordedMethod
from .recorder import LayerError, RecorderError, Recording, TargetError, record
from .explain import Explanation, explain, explain_many

# built-in methods: importing registers them, in this order
from . import gradient as _gradient  # noqa: F401  Grad-CAM, Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM
from . import score as _score  # noqa: F401  Score-CAM, SS-CAM, IS-CAM, Ablation-CAM
from . import baselines as _baselines  # noqa: F401  Eigen-CAM, Random, Centre

from .normalize import normalize, normalize_many
from .render import COLORMAPS, render_views
from .layers import LayerInfo, candidate_layers, default_layer
from .images import load_image
from .zoo import LoadedModel, list_models, load_checkpoint, load_model
from .faithfulness import confidence_change, deletion_curve, insertion_curve, reference_curves
from .localization import energy_pointing_game, pointing_game

__all__ = [
    "GradLensError",
    "UnknownMethodError",
    "LayerError",
    "TargetError",
    "RecorderError",
    "MethodSpec",
    "register_method",
    "get_method",
    "list_methods",
    "create_method",
    "CamMethod",
    "RecordedMethod",
    "GradientMethod",
    "ForwardMethod",
    "LayerContext",
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
]
