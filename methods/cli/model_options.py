"""The options both commands take to name their model: a catalog name, your checkpoint with its
architecture, or your ``module:function`` factory, with an optional ``--model-config`` JSON file."""

from __future__ import annotations

import argparse
from typing import Any

from methods.errors import OptionError
from methods.models.model_config import read_model_config
from methods.models.sources.base import source_for
from methods.models.sources.user import register_model
from methods.models.user_models import ModelRef, is_factory_name

__all__ = ["add_model_options", "model_arg"]


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--checkpoint``, ``--arch`` and ``--model-config``."""
    p.add_argument(
        "--model",
        default=None,
        help="catalog name (scenes_vgg, resnet50, hf:<folder>) or your factory module:function",
    )
    p.add_argument("--checkpoint", default=None, help="your weight file (a state_dict or .safetensors); needs --arch")
    p.add_argument("--arch", default=None, help="the checkpoint's architecture: a torchvision name or timm:<name>")
    p.add_argument(
        "--model-config",
        default=None,
        help="JSON: class_names or classes_file, input_size, mean, std, resize, crop_pct, task (docs/batch.md)",
    )


def model_arg(args: argparse.Namespace) -> Any:
    """A catalog name or a :class:`ModelRef` from the parsed options (a factory is registered under
    its ``module:function`` name, so the catalog lists it).

    Raises:
        OptionError: no model, both ``--model`` and ``--checkpoint``, ``--arch`` or
            ``--model-config`` with a catalog name, a bad config or a missing file.
    """
    if args.checkpoint is not None:
        if args.model is not None:
            raise OptionError("give --model or --checkpoint, not both")
        if not args.arch:
            raise OptionError("--checkpoint needs --arch: a torchvision name (resnet18 ...) or timm:<name>")
        return ModelRef("checkpoint", args.checkpoint, args.arch, read_model_config(args.model_config))
    if args.model is None:
        raise OptionError("give --model NAME (or module:function), or --checkpoint PATH --arch ARCH")
    if args.arch is not None:
        raise OptionError("--arch goes with --checkpoint; a catalog model knows its architecture")
    owner = source_for(args.model)
    if (owner is None or owner.kind == "user") and is_factory_name(args.model):
        ref = ModelRef("factory", args.model, config=read_model_config(args.model_config))
        return register_model(args.model, ref, replace=True)
    if args.model_config is not None:
        raise OptionError(
            f"--model-config goes with --checkpoint or a module:function factory; {args.model!r} is a catalog name"
        )
    return args.model
