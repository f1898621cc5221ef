"""Matching an annotation's class names to the model's classes.

Rule: the ``class_map`` is applied first; then an EXACT match of a model class name; then a
match that ignores case and treats ``_`` and ``-`` as spaces, if it finds exactly one class
(``"egyptian_cat"`` finds ``"Egyptian cat"``). A name the model has twice (ImageNet's two
``"crane"`` classes, 134 the bird and 517 the machine) is ambiguous and refused: map it to an
index with ``class_map={"crane": "#134"}``. Anything else is an
:class:`~methods.errors.AnnotationError` naming the class, where it was found and the model's
closest names. Nothing is guessed beyond that (``"cat"`` does not become ``"tabby"``).
"""

from __future__ import annotations

from collections.abc import Sequence

from methods.errors import AnnotationError, suggest

__all__ = ["ClassMatcher"]


def _norm(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


class ClassMatcher:
    """``matcher(name, where) -> model class index``; remembers what it matched.

    Examples:
        >>> m = ClassMatcher(["tench", "Egyptian cat"], {"kitty": "Egyptian cat"})
        >>> m("egyptian_cat", "x.xml"), m("kitty", "x.xml")
        (1, 1)
    """

    def __init__(self, class_names: Sequence[str], class_map=()) -> None:
        self.class_names = tuple(str(c) for c in class_names)
        if not self.class_names:
            raise AnnotationError("the model has no class names: annotated data needs them to find each label")
        self.class_map = dict(class_map.items() if hasattr(class_map, "items") else class_map)
        exact: dict[str, list[int]] = {}
        for i, c in enumerate(self.class_names):
            exact.setdefault(c, []).append(i)
        self._exact = exact
        loose: dict[str, list[int]] = {}
        for i, c in enumerate(self.class_names):
            loose.setdefault(_norm(c), []).append(i)
        self._loose = loose
        self._seen: dict[str, int] = {}

    def __call__(self, name: object, where: str) -> int:
        if not isinstance(name, str) or not name.strip():
            raise AnnotationError(f"{where}: a class name must be a non-empty string; got {name!r}")
        if name in self._seen:
            return self._seen[name]
        wanted = self.class_map.get(name, name)
        n = len(self.class_names)
        if wanted.startswith("#") and wanted[1:].isdigit():
            idx = int(wanted[1:])
            if idx >= n:
                raise AnnotationError(f"{where}: class_map sends {name!r} to {wanted}, but the model has {n} classes")
        elif len(self._exact.get(wanted, [])) > 1:
            raise AnnotationError(
                f"{where}: class {wanted!r} names {len(self._exact[wanted])} classes of the model "
                f"(indices {self._exact[wanted]}); say which with class_map={{{name!r}: '#<index>'}}"
            )
        elif wanted in self._exact:
            idx = self._exact[wanted][0]
        else:
            found = self._loose.get(_norm(wanted), [])
            if len(found) != 1:
                mapped = f" (mapped from {name!r} by class_map)" if wanted != name else ""
                listing = f" Its classes: {list(self.class_names)}." if n <= 30 else f" (it has {n} classes)"
                raise AnnotationError(
                    f"{where}: class {wanted!r}{mapped} is not a class of the model.{suggest(wanted, self.class_names)}"
                    f"{listing} Rename it in the annotations or map it (--class-map FILE.json, or AnnotatedOptions.class_map)."
                )
            idx = found[0]
        self._seen[name] = idx
        return idx
