"""What the batch and evaluate loops share: their arguments (model, methods, layers, plugins) and
the set-up of every worker (plugins imported, model loaded once, put on its device).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

from methods._internal.allocator import keep_large_blocks
from methods._internal.device import resolve_device
from methods.cams.core.registry import get_method
from methods.errors import GradLensError, OptionError, WrongTypeError
from methods.models.catalog import load_model
from methods.models.loaded import LoadedModel
from methods.models.user_models import ModelRef
from methods.pipeline.sources import load_sample

__all__ = [
    "load_model_arg",
    "layers_arg",
    "method_names",
    "import_plugins",
    "worker_model",
    "worker_setup",
    "score_items",
]


def load_model_arg(model: Any, *, objects: bool = False):
    """A ``LoadedModel`` from a catalog name or a :class:`~methods.models.user_models.ModelRef` (a
    user's checkpoint or factory; loaded on the CPU), or a ``LoadedModel`` (as given).

    Args:
        objects: the caller writes one row per object, so a detection or segmentation model is
            accepted (evaluate, batch); otherwise only a classifier is.

    Raises:
        OptionError: a detection or segmentation model (``LoadedModel.task``) where ``objects`` is
            False: the caller explains one class per image, which such a model does not give.
    """
    if isinstance(model, str):
        model = load_model(model)
    elif isinstance(model, ModelRef):
        model = model.load()
    elif not hasattr(model, "model") or not hasattr(model, "preprocess"):
        raise WrongTypeError(f"model must be a catalog name, a ModelRef or a LoadedModel; got {type(model).__name__}")
    task = getattr(model, "task", "classification")
    if task != "classification" and not objects:
        raise OptionError(
            f"{model.name} is a {task} model: batch and evaluate explain a classifier's class, one per image. "
            "Explain its objects with methods.explain(..., target=...) (a box or region target) or on the "
            "dashboard's Detection page."
        )
    return model


def layers_arg(layers: Any) -> Any:
    """``--layers`` for :func:`methods.cams.core.explain.resolve_layers`: ``"default"`` -> None,
    ``"all"``, or comma-separated names -> a list.

    Examples:
        >>> layers_arg("default"), layers_arg("features.3, features.8")
        (None, ['features.3', 'features.8'])
    """
    if layers is None or layers == "default":
        return None
    if layers == "all":
        return "all"
    if isinstance(layers, str):
        names = [s.strip() for s in layers.split(",") if s.strip()]
        if not names:
            raise OptionError(f"layers={layers!r}: give 'default', 'all' or comma-separated module names")
        return names
    return list(layers)


def method_names(methods: Sequence[str] | str) -> list[str]:
    """Registered method keys from a list or a comma-separated string (unknown -> suggestions)."""
    if isinstance(methods, str):
        methods = methods.split(",")
    names = [n.strip() for n in methods if isinstance(n, str) and n.strip()]
    if not names:
        raise OptionError("methods is empty; name at least one method, e.g. gradcam")
    if len(set(names)) != len(names):
        raise OptionError(f"methods {names} contain duplicates")
    for n in names:
        get_method(n)  # UnknownMethodError names the closest registered methods
    return names


def import_plugins(plugins: Sequence[str] | str | None) -> tuple[str, ...]:
    """Import the modules that register a user's own methods (also done in every worker).

    Raises:
        OptionError: a module that cannot be imported (the message has the import error).
    """
    if not plugins:
        return ()
    names = tuple(p.strip() for p in (plugins.split(",") if isinstance(plugins, str) else plugins) if p.strip())
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise OptionError(f"plugins: module {name!r} cannot be imported ({exc})") from None
    return names


def worker_model(model: Any, loaded: Any, device: Any, in_process: bool) -> tuple[Any, str | None, Any]:
    """``(model for the spec, device for the spec, the device it runs on here)``.

    * a catalog name or a :class:`~methods.models.user_models.ModelRef`: in this process the
      driver's own copy is used (loaded once); worker processes load it by name / from the ref (a
      checkpoint travels as its path, architecture and config, never as a pickled module);
      ``device=None`` lets each worker pick its default device;
    * a caller's ``LoadedModel``: it runs where it is unless ``device`` says otherwise, and then a
      COPY is moved (the caller's model is never moved); worker processes get a pickled copy.
    """
    by_name = isinstance(model, (str, ModelRef))
    run_device = resolve_device(device) if (device is not None or by_name) else loaded.device
    if in_process and not by_name and run_device != loaded.device:
        loaded = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
    if isinstance(model, ModelRef) and model.kind == "checkpoint":
        model = dataclasses.replace(model, sha256=loaded.digest)  # workers must read the same bytes
    sent = loaded if (in_process or not by_name) else model
    return sent, (None if (device is None and by_name) else str(run_device)), run_device


def worker_setup(model: Any, device: Any, plugins: Sequence[str]) -> tuple[LoadedModel, torch.device]:
    """In a worker (process, Ray actor or this process): keep the C allocator's large blocks
    (:func:`methods._internal.allocator.keep_large_blocks`), import the plugins, load the model once
    (a catalog name or a ModelRef) or take the one sent, and put it on the worker's device.

    Returns:
        ``(loaded model, the device it runs on)``.
    """
    keep_large_blocks()  # batches reuse the heap's large blocks: no page faults per tensor (allocator.py)
    import_plugins(tuple(plugins))
    if isinstance(model, str):
        loaded = load_model(model)
    elif isinstance(model, ModelRef):
        loaded = model.load()
    else:
        loaded = model
    run_device = resolve_device(device)
    if loaded.device != run_device:
        loaded.model.to(run_device)
    return loaded, run_device


def score_items(items: Sequence[dict], score: Callable[[Any, dict], list[dict]]) -> list[dict]:
    """A scoring worker's results: per item ``{"index", "name", "status", "rows", "reason"}``, status
    ``"skipped"`` (its picture could not be read), ``"failed"`` (``score(sample, item)`` raised: the
    error is the reason, and one bad image never stops the others) or ``"done"`` with score's rows."""
    out = []
    for item in items:
        base = {"index": item["index"], "name": item["name"], "rows": [], "reason": ""}
        try:
            sample = load_sample(item)
        except (GradLensError, OSError, ValueError) as exc:
            out.append(dict(base, status="skipped", reason=str(exc)))
            continue
        try:
            out.append(dict(base, status="done", rows=score(sample, item)))
        except Exception as exc:  # reported in the result, never raised
            out.append(dict(base, status="failed", reason=f"{type(exc).__name__}: {exc}"))
    return out
