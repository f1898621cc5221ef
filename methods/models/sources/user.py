"""Your own models by name: :func:`register_model` adds a ``module:function`` factory (or a
checkpoint with its architecture) to the catalog, so ``load_model(name)`` and a model menu reach it.

The commands use it with ``--model module:function``: the factory is registered under that name.
Worker processes do not share this registry; the commands send them the
:class:`~methods.models.user_models.ModelRef` itself.
"""

from __future__ import annotations

from pathlib import Path

from methods.errors import OptionError
from methods.models.loaded import LoadedModel, Source
from methods.models.sources.base import ModelEntry, register_source, source_for
from methods.models.user_models import ModelRef

__all__ = ["UserSource", "register_model", "USER_MODELS"]

USER_MODELS: dict[str, ModelRef] = {}


def register_model(name: str, ref: ModelRef, *, replace: bool = False) -> ModelRef:
    """Add ``ref`` to the catalog as ``name`` (again with the same ref, or ``replace=True``: it
    takes the name's place).

    Raises:
        OptionError: ``name`` is taken by another model or another source.
    """
    if not isinstance(name, str) or not name:
        raise OptionError(f"a model name must be a non-empty str, got {name!r}")
    if not replace and USER_MODELS.get(name, ref) != ref:
        raise OptionError(f"model name {name!r} is registered already for {USER_MODELS[name].target!r}")
    owner = source_for(name)
    if owner is not None and owner.kind != "user":
        raise OptionError(f"model name {name!r} belongs to the {owner.kind} models; choose another name")
    USER_MODELS[name] = ref
    return ref


class UserSource:
    """The models registered with :func:`register_model`, in registration order."""

    kind: Source = "user"

    def names(self) -> list[str]:
        return list(USER_MODELS)

    def owns(self, name: str) -> bool:
        return name in USER_MODELS

    def entries(self) -> list[ModelEntry]:
        out = []
        for name, ref in USER_MODELS.items():
            size = ref.config.input_size or (224, 224)
            path = ref.target if ref.kind == "checkpoint" else None
            available = path is None or Path(path).is_file()  # a checkpoint moved away since it was registered
            out.append(ModelEntry(name, name, "user", size, f"your model ({ref.label})", available, path))
        return out

    def weights_file(self, name: str) -> Path:
        return Path(USER_MODELS[name].target)

    def load(self, name: str, *, allow_download: bool = False) -> LoadedModel:
        return USER_MODELS[name].load()


register_source(UserSource())
