"""Hugging Face ``transformers`` image classifiers: a local folder, or a hub id downloaded on request.

:func:`load_huggingface` builds ``AutoModelForImageClassification`` (ViT, DeiT, BEiT, Swin,
ConvNeXt, DINOv2 with a head ...) from a folder holding ``config.json``, ``model.safetensors``
and, optionally, ``preprocessor_config.json``; or, with ``allow_download=True``, from a hub id
(``"google/vit-base-patch16-224"``), fetching those three files with ``huggingface_hub`` into its
cache. ``HF_ENDPOINT`` is read at call time, so a mirror (or a test's loopback server) works.

Loading is safe: safetensors only (``use_safetensors=True``: a pickle ``pytorch_model.bin`` is
refused), ``trust_remote_code=False`` (a config that needs code from the repository is refused).

What comes from where:

* the model returns an output object; :class:`methods._internal.score_view.LogitsView` makes it
  return ``.logits`` as (N, K), and that view is :attr:`LoadedModel.model`;
* class names: ``config.id2label`` (in index order);
* input size, mean and std: ``preprocessor_config.json`` (``crop_size`` when ``do_center_crop``,
  else ``size`` as ``height``/``width`` or ``shortest_edge``; ``image_mean`` / ``image_std``),
  else ``config.image_size`` and ImageNet statistics.

Deviation from the image processors: like every GradLens model, the WHOLE image is resized to the
input size (:meth:`methods.models.loaded.LoadedModel.preprocess`), no short-side resize + centre crop,
so the map covers the picture shown.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from methods._internal.score_view import LogitsView
from methods.cams.core.layers import default_layer
from methods.errors import CheckpointError, OptionError, WeightsNotAvailableError
from methods.models.loaded import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, ModelCard

__all__ = ["HF_PREFIX", "HF_FILES", "load_huggingface", "hf_preprocessing", "fetch_hub_files"]

HF_PREFIX = "hf:"
#: The files a model needs: (file name, required).
HF_FILES: tuple[tuple[str, bool], ...] = (
    ("config.json", True),
    ("model.safetensors", True),
    ("preprocessor_config.json", False),
)


def _side(value: Any) -> tuple[int, int] | None:
    if isinstance(value, dict):
        if "height" in value and "width" in value:
            return int(value["height"]), int(value["width"])
        if "shortest_edge" in value:
            return int(value["shortest_edge"]), int(value["shortest_edge"])
        return None
    if isinstance(value, int):
        return value, value
    return None


def hf_preprocessing(
    processor: dict[str, Any], image_size: Any
) -> tuple[tuple[int, int], tuple[float, float, float], tuple[float, float, float]]:
    """``(input_size, mean, std)`` from a ``preprocessor_config.json`` dict (may be empty) and
    ``config.image_size`` (the fallback size).

    Raises:
        CheckpointError: the processor does not scale pixels by 1/255 (GradLens's preprocessing
            always does), or no input size can be read.

    Examples:
        >>> hf_preprocessing({"size": {"height": 32, "width": 48}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}, 224)
        ((32, 48), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    """
    size = _side(processor.get("crop_size")) if processor.get("do_center_crop") else None
    size = size or _side(processor.get("size")) or _side(image_size)
    if size is None:
        raise CheckpointError(
            "the Hugging Face model gives no input size (preprocessor_config.json 'size' / 'crop_size', or "
            "config.image_size); add one to its preprocessor_config.json"
        )
    if not processor.get("do_rescale", True) or abs(float(processor.get("rescale_factor", 1 / 255)) - 1 / 255) > 1e-9:
        raise CheckpointError(
            "the image processor does not scale pixels by 1/255 (do_rescale / rescale_factor), which GradLens's "
            "preprocessing always does; this model is not supported"
        )
    if processor.get("do_normalize", True):
        mean = tuple(float(v) for v in processor.get("image_mean", IMAGENET_MEAN))
        std = tuple(float(v) for v in processor.get("image_std", IMAGENET_STD))
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    if len(mean) != 3 or len(std) != 3:
        raise CheckpointError(f"image_mean / image_std must have 3 values (RGB), got {mean} / {std}")
    return size, (mean[0], mean[1], mean[2]), (std[0], std[1], std[2])


def fetch_hub_files(repo_id: str, *, revision: str = "main", cache_dir: str | Path | None = None) -> Path:
    """Download :data:`HF_FILES` of ``repo_id`` with ``huggingface_hub`` (from ``$HF_ENDPOINT``,
    read now) and return the folder holding them (the hub cache's snapshot folder).

    Raises:
        WeightsNotAvailableError: a required file is missing or the hub cannot be reached.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    endpoint = os.environ.get("HF_ENDPOINT") or None
    folder: Path | None = None
    for name, required in HF_FILES:
        try:
            path = hf_hub_download(repo_id, name, revision=revision, cache_dir=cache_dir, endpoint=endpoint)
        except (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
            if not required and isinstance(exc, EntryNotFoundError):
                continue
            raise WeightsNotAvailableError(
                f"Hugging Face model {repo_id!r} (revision {revision!r}): {name} could not be downloaded from "
                f"{endpoint or 'https://huggingface.co'} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "check the id and the network, or download the folder and load it with load_huggingface(folder)"
            ) from exc
        folder = Path(str(path)).parent
    assert folder is not None  # config.json is required
    return folder


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path.name} in {path.parent} is not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path.name} in {path.parent} is not a JSON object")
    return data


def _build(folder: Path) -> nn.Module:
    if not (folder / "model.safetensors").is_file():
        found = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".safetensors"))
        raise CheckpointError(
            f"{folder} has no model.safetensors (found: {found or 'no weight file'}); GradLens loads "
            "Hugging Face weights from safetensors only (a pickle file can run code). Convert it with "
            "model.save_pretrained(folder, safe_serialization=True)"
        )
    config = _read_json(folder / "config.json")
    if config.get("auto_map"):
        raise CheckpointError(
            f"{folder}/config.json asks for code from the model repository (auto_map); GradLens never sets "
            "trust_remote_code, so this model is not loaded"
        )
    from transformers import AutoModelForImageClassification

    try:
        model = AutoModelForImageClassification.from_pretrained(
            str(folder), use_safetensors=True, trust_remote_code=False, local_files_only=True
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"transformers could not build an image classifier from {folder} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300]})"
        ) from exc
    return model.eval()


def load_huggingface(
    name_or_path: str | Path,
    *,
    allow_download: bool = False,
    revision: str = "main",
    cache_dir: str | Path | None = None,
) -> LoadedModel:
    """A Hugging Face image classifier as a :class:`LoadedModel` (eval mode, CPU).

    Args:
        name_or_path: a local folder (``config.json`` + ``model.safetensors``), or a hub id
            (``"owner/name"``); an ``"hf:"`` prefix is allowed.
        allow_download: fetch a hub id's files (never done otherwise).
        revision: the hub revision (branch, tag or commit).
        cache_dir: the hub cache (default: huggingface_hub's).

    Raises:
        WeightsNotAvailableError: a hub id without ``allow_download``, or the download failed.
        CheckpointError: no safetensors weights, remote code asked for, or a model transformers
            cannot build as an image classifier.
    """
    text = str(name_or_path)
    text = text[len(HF_PREFIX) :] if text.startswith(HF_PREFIX) else text
    if not text:
        raise OptionError("name_or_path is empty: give a folder or a Hugging Face hub id ('owner/name')")
    folder = Path(text).expanduser()
    if folder.is_dir():
        origin, label = str(folder), folder.name
    elif allow_download:
        folder = fetch_hub_files(text, revision=revision, cache_dir=cache_dir)
        origin, label = f"huggingface.co/{text} ({revision})", text
    else:
        raise WeightsNotAvailableError(
            f"{text!r} is not a folder on this machine; to fetch it from the Hugging Face hub call "
            "load_huggingface(..., allow_download=True) (load_model(name, allow_download=True))"
        )
    model = _build(folder)
    processor_file = folder / "preprocessor_config.json"
    processor = _read_json(processor_file) if processor_file.is_file() else {}
    config = model.config
    size, mean, std = hf_preprocessing(processor, getattr(config, "image_size", None))
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    num_labels = int(getattr(config, "num_labels", len(id2label)))
    names = tuple(id2label.get(i, f"class {i}") for i in range(num_labels))
    view = LogitsView(model)
    try:
        layer = default_layer(view, input_size=size)
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(
            f"the model does not run on a {size[0]}x{size[1]} input, the size its preprocessor_config.json asks "
            f"for ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from exc
    return LoadedModel(
        name=HF_PREFIX + label,
        model=view,
        input_size=size,
        mean=mean,
        std=std,
        class_names=names,
        default_layer=layer,
        source="huggingface",
        note=f"Hugging Face {type(model).__name__} from {origin}",
        card=ModelCard(weights=origin, license="see the model card", trained_on="see the model card"),
    )
