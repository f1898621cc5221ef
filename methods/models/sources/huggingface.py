"""Hugging Face ``transformers`` image classifiers (:mod:`methods.models.huggingface`): any name
``"hf:<folder>"`` or ``"hf:<owner>/<name>"`` (a hub id, fetched only with ``allow_download=True``).

The source lists no models of its own (a hub has too many): ``load_model("hf:...")`` reaches it.
"""

from __future__ import annotations

from pathlib import Path

from methods.models.huggingface import HF_PREFIX, load_huggingface
from methods.models.loaded import LoadedModel, Source
from methods.models.sources.base import ModelEntry, register_source

__all__ = ["HuggingFaceSource"]


class HuggingFaceSource:
    """``hf:``-prefixed names: a local folder, or a hub id downloaded on request."""

    kind: Source = "huggingface"

    def names(self) -> list[str]:
        return []

    def owns(self, name: str) -> bool:
        return isinstance(name, str) and name.startswith(HF_PREFIX) and len(name) > len(HF_PREFIX)

    def entries(self) -> list[ModelEntry]:
        return []

    def weights_file(self, name: str) -> Path:
        """The folder's ``model.safetensors`` (for a hub id: where it would be in a local folder of that name)."""
        return Path(name[len(HF_PREFIX) :]).expanduser() / "model.safetensors"

    def load(self, name: str, *, allow_download: bool = False) -> LoadedModel:
        return load_huggingface(name, allow_download=allow_download)


register_source(HuggingFaceSource())
