"""Reading a data set's files within bounds: annotation files by size, image folders by name."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

from methods._internal.files import open_regular
from methods.errors import AnnotationError

__all__ = ["IMAGE_SUFFIXES", "read_bounded", "image_files", "inside"]

#: File name endings an ImageFolder or a mask folder's ``images/`` counts as images (any case);
#: other files (a README, a .DS_Store) are not part of the set.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def read_bounded(path: str | os.PathLike[str], max_bytes: int, noun: str) -> bytes:
    """The bytes of a regular file, refused when larger than ``max_bytes`` (before reading it).

    Raises:
        AnnotationError: missing, not a regular file, or too large.
    """
    with open_regular(path, AnnotationError, noun) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise AnnotationError(
                f"the {noun} file '{path}' is {size:,} bytes, more than max_file_bytes={max_bytes:,}; "
                "raise AnnotatedOptions.max_file_bytes if you trust it"
            )
        return f.read(max_bytes + 1)


def image_files(folder: pathlib.Path) -> Iterator[pathlib.Path]:
    """Image files under ``folder``, recursively, sorted by their ``/``-separated relative path;
    hidden files and folders (a leading ``.``) are left out, symlinked folders are not followed."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fn in filenames:
            if not fn.startswith(".") and fn.lower().endswith(IMAGE_SUFFIXES):
                entries.append(pathlib.Path(dirpath) / fn)
    entries.sort(key=lambda p: p.relative_to(folder).as_posix())
    yield from entries


def inside(root: pathlib.Path, name: str, where: str) -> pathlib.Path:
    """``root / name`` for a file name an annotation gives, refused when it is absolute or climbs out
    of ``root`` with ``..`` (the batch writes each image's outputs under its name).

    Raises:
        AnnotationError: an absolute name, a ``..`` part, or a backslash.

    Examples:
        >>> inside(pathlib.Path("data"), "a/b.jpg", "x").as_posix()
        'data/a/b.jpg'
    """
    pure = pathlib.PurePosixPath(name)
    if not name or pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise AnnotationError(
            f"{where}: the file name {name!r} must be a path relative to the images folder '{root}', without "
            "'..' or backslashes"
        )
    return root / pure
