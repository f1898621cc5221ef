"""A user's own model for the commands: :class:`ModelRef`, a small picklable recipe that loads it.

Two kinds (the commands' ``--checkpoint PATH --arch ARCH`` and ``--model module:function``):

* ``checkpoint`` — a weight file for a torchvision architecture or ``timm:<name>``, loaded by
  :func:`methods.models.checkpoints.load.load_checkpoint` (``weights_only``; what the file declares
  is checked before any tensor data is read). Without ``class_names`` in the config, the number of
  classes is read from the file's declared classifier shape (``fc.weight`` of a ResNet ...); the
  classes are then named ``class 0``, ``class 1`` ...
* ``factory`` — ``module:function``: the module is imported (as ``--plugins`` modules are) and the
  function called with no arguments; it returns an ``nn.Module`` or a
  :class:`~methods.models.loaded.LoadedModel`. A bare module gets the config's preprocessing (or
  224 x 224, ImageNet mean/std), eval mode, and :func:`methods.cams.core.layers.default_layer`;
  one forward of a zero image checks its output is (1, K) logits with K = the number of classes.

The :class:`~methods.models.model_config.ModelConfig` overrides what the model declares.

A ref, not a module, is what travels to worker processes and Ray actors: each worker loads the
model from it once (the file is re-read and re-checked there), so no pickled ``nn.Module`` is ever
sent or received.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from methods._internal.torch_utils import model_device
from methods.errors import CheckpointError, OptionError, UnknownModelError, WrongTypeError, suggest
from methods.models.loaded import IMAGENET_MEAN, IMAGENET_STD, LoadedModel
from methods.models.model_config import ModelConfig

__all__ = ["ModelRef", "FACTORY_PATTERN", "is_factory_name", "checkpoint_classes"]

FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_]\w*$")


def is_factory_name(text: object) -> bool:
    """Whether ``text`` looks like ``package.module:function``.

    Examples:
        >>> is_factory_name("my_models:build"), is_factory_name("resnet18"), is_factory_name("hf:./x")
        (True, False, False)
    """
    return isinstance(text, str) and FACTORY_PATTERN.match(text) is not None


def _check_arch(arch: object) -> str:
    from methods.models.checkpoints.load import checkpoint_architectures
    from methods.models.checkpoints.timm_archs import check_timm_name, timm_name

    if not isinstance(arch, str) or not arch:
        raise OptionError(f"arch must be a torchvision name or 'timm:<name>', got {arch!r}")
    t = timm_name(arch)
    if t is not None:
        check_timm_name(t)
        return arch
    archs = checkpoint_architectures()
    if arch not in archs:
        raise UnknownModelError(
            f"unknown arch {arch!r}.{suggest(arch, archs)} Give a torchvision model name (resnet18, vgg16 ...) "
            "or 'timm:<name>' (timm.list_models())."
        )
    return arch


def checkpoint_classes(path: str | Path, arch: str) -> int:
    """The number of classes a checkpoint's classifier declares (no tensor data read).

    Raises:
        OptionError: a detection or segmentation ``arch`` (give ``class_names`` in the config), or
            no classifier weight of the architecture in the file.
        CheckpointError: an unreadable or unsafe file (the loader's own messages).
    """
    from methods.models.checkpoints.architectures import classifier_key, template
    from methods.models.checkpoints.declared import MAX_CHECKPOINT_BYTES, MAX_PICKLE_BYTES, declared_safetensors
    from methods.models.checkpoints.timm_archs import timm_factory, timm_name
    from methods.models.checkpoints.weight_files import is_safetensors, read_bytes, state_dict_of, torch_load
    from methods.models.task_zoo import task_architectures

    if arch in task_architectures():
        raise OptionError(f"{arch} is a detection or segmentation architecture: give class_names in --model-config")
    t = timm_name(arch)
    key = classifier_key(template(timm_factory(t, 1000)) if t is not None else template(arch))
    data, what = read_bytes(path, limit=MAX_CHECKPOINT_BYTES + MAX_PICKLE_BYTES)
    if is_safetensors(data):
        shapes = {k: tuple(d.shape) for k, d in declared_safetensors(data).items()}
    else:
        shapes = {
            k.removeprefix("module."): tuple(v.shape) for k, v in state_dict_of(torch_load(data, meta=True)).items()
        }
    if key is None or key not in shapes or len(shapes[key]) < 1:
        raise OptionError(
            f"{what} has no {key or 'classifier'} tensor of {arch}, so its number of classes is unknown: "
            "check --arch, or give class_names in --model-config"
        )
    return int(shapes[key][0])


@dataclass(frozen=True)
class ModelRef:
    """How to load a user's model, by value (paths and names only; picklable).

    Attributes:
        kind: ``"checkpoint"`` or ``"factory"``.
        target: the checkpoint path, or ``"module:function"``.
        arch: the architecture of a checkpoint (``"resnet18"``, ``"timm:convnext_tiny"``).
        config: class names and preprocessing (:class:`ModelConfig`).
        sha256: the checkpoint's digest when the driver loaded it; a worker that reads other bytes
            (the file was replaced during the run) refuses them instead of mixing two models.
    """

    kind: Literal["checkpoint", "factory"]
    target: str
    arch: str | None = None
    config: ModelConfig = field(default_factory=ModelConfig)
    sha256: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("checkpoint", "factory"):
            raise OptionError(f"kind must be 'checkpoint' or 'factory', got {self.kind!r}")
        if not isinstance(self.config, ModelConfig):
            raise WrongTypeError(f"config must be a ModelConfig, got {type(self.config).__name__}")
        if self.kind == "checkpoint":
            path = Path(self.target).expanduser()
            if not path.is_file():
                raise OptionError(f"checkpoint {self.target!r} is not a file; check the path")
            object.__setattr__(self, "target", str(path.resolve()))
            _check_arch(self.arch)
        elif not is_factory_name(self.target):
            raise OptionError(f"model factory {self.target!r} must be 'module:function', e.g. my_models:build")

    @property
    def label(self) -> str:
        """What messages and the manifest call it before it is loaded."""
        return f"{self.arch}:{Path(self.target).name}" if self.kind == "checkpoint" else self.target

    def load(self) -> LoadedModel:
        """The model, in eval mode on the CPU (see the module docstring)."""
        return self._load_checkpoint() if self.kind == "checkpoint" else self._load_factory()

    def _load_checkpoint(self) -> LoadedModel:
        from methods.models.checkpoints.load import load_checkpoint

        cfg = self.config
        assert self.arch is not None
        try:
            n_file: int | None = checkpoint_classes(self.target, self.arch)
        except OptionError:
            if cfg.class_names is None:
                raise
            n_file = None  # a detector or segmenter: load_checkpoint checks the count
        if cfg.class_names is not None and n_file is not None and n_file != len(cfg.class_names):
            raise OptionError(
                f"the model config gives {len(cfg.class_names)} class names but the checkpoint's classifier "
                f"has {n_file} outputs; give one name per output"
            )
        num_classes = len(cfg.class_names) if cfg.class_names is not None else int(n_file or 0)
        loaded = load_checkpoint(
            self.target,
            arch=self.arch,
            num_classes=num_classes,
            class_names=cfg.class_names,
            input_size=cfg.input_size or (224, 224),
            mean=cfg.mean or IMAGENET_MEAN,
            std=cfg.std or IMAGENET_STD,
        )
        if self.sha256 is not None and loaded.digest != self.sha256:
            raise CheckpointError(
                f"checkpoint {self.target!r} changed since the run started (sha256 {self.sha256[:12]} -> "
                f"{str(loaded.digest)[:12]}); run again on a file that stays put"
            )
        rest = {k: v for k, v in cfg.overrides().items() if k in ("resize", "crop_pct", "task")}
        return dataclasses.replace(loaded, **rest) if rest else loaded

    def _load_factory(self) -> LoadedModel:
        module_name, func_name = self.target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise OptionError(f"model factory: module {module_name!r} cannot be imported ({exc})") from None
        func = getattr(module, func_name, None)
        if not callable(func):
            raise OptionError(f"model factory: {module_name!r} has no function {func_name!r}")
        try:
            made = func()
        except Exception as exc:  # the user's code: its own error, said in one line
            raise OptionError(f"model factory {self.target!r} raised {type(exc).__name__}: {exc}") from exc
        cfg = self.config
        if isinstance(made, LoadedModel):
            loaded = dataclasses.replace(made, **cfg.overrides()) if cfg.overrides() else made
        elif isinstance(made, nn.Module):
            loaded = _wrap(made, self.target, cfg)
        else:
            raise OptionError(
                f"model factory {self.target!r} returned a {type(made).__name__}; it must return a torch.nn.Module "
                "or a methods.LoadedModel"
            )
        _check_outputs(loaded, self.target)
        return loaded


def _wrap(net: nn.Module, name: str, cfg: ModelConfig) -> LoadedModel:
    """A bare module as a LoadedModel: eval mode, the config's preprocessing, the default layer."""
    from methods.cams.core.layers import default_layer

    net.eval()
    size = cfg.input_size or (224, 224)
    names = cfg.class_names or tuple(f"class {i}" for i in range(_outputs(net, size, name)))
    return LoadedModel(
        name=name,
        model=net,
        input_size=size,
        mean=cfg.mean or IMAGENET_MEAN,
        std=cfg.std or IMAGENET_STD,
        class_names=names,
        default_layer=default_layer(net, input_size=size),
        source="user",
        note=f"{name}: your factory's model, {len(names)} classes; input {size[0]}x{size[1]}.",
        resize=cfg.resize or "squash",  # type: ignore[arg-type]
        crop_pct=cfg.crop_pct or 1.0,
        task=cfg.task or "classification",  # type: ignore[arg-type]
    )


def _outputs(net: nn.Module, size: tuple[int, int], name: str) -> int:
    """K of the (1, K) logits one zero image gives (train/eval state restored)."""
    was = net.training
    net.eval()
    try:
        with torch.inference_mode():
            out = net(torch.zeros(1, 3, *size, device=model_device(net)))
    finally:
        net.train(was)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise OptionError(
            f"model {name!r} gives {shape} for one image, not (1, K) class scores; batch and evaluate explain a "
            "classifier: return a module whose forward gives (N, K) logits"
        )
    return int(out.shape[1])


def _check_outputs(loaded: LoadedModel, name: str) -> None:
    """A classifier's outputs must be one per class name."""
    if loaded.task != "classification":
        return
    k = _outputs(loaded.model, loaded.input_size, name)
    if k != loaded.num_classes:
        raise CheckpointError(
            f"model {name!r} has {k} outputs but {loaded.num_classes} class names; give one name per output "
            "(class_names in --model-config)"
        )
