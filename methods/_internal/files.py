"""The one way a path a user gave is opened for reading: regular files only, never blocking.

``open(path)`` on a FIFO waits for a writer forever, and a character device (``/dev/zero``,
``/dev/urandom``) never ends. :func:`open_regular` opens with ``O_NONBLOCK`` (which returns at once
for a FIFO and changes nothing for a regular file), checks ``fstat`` on the descriptor it holds (no
race between a check and the open) and refuses anything but a regular file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from methods.errors import GradLensError

__all__ = ["open_regular"]


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], error: type[GradLensError], noun: str) -> BinaryIO:
    """``path`` opened for binary reading if it is a regular file (symlinks followed).

    Args:
        path: the file.
        error: the GradLensError subclass to raise (ImageError, CheckpointError ...).
        noun: what the file should be, for messages ("image", "checkpoint").

    Raises:
        error: missing, unreadable, or a FIFO / device / socket / folder.

    Examples:
        >>> from methods.errors import ImageError
        >>> open_regular("/dev/null", ImageError, "image")
        Traceback (most recent call last):
        ...
        methods.errors.ImageError: '/dev/null' is a character device, not a regular file; give the path of the image file.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise error(f"No such {noun} file: '{path}'. Check the path.") from exc
    except IsADirectoryError as exc:
        raise error(f"'{path}' is a folder, not a file; give the path of the {noun} file.") from exc
    except OSError as exc:
        raise error(f"Cannot read the {noun} file '{path}': {exc}.") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _kind(mode)
            if stat.S_ISDIR(mode):
                raise error(f"'{path}' is a folder, not a file; give the path of the {noun} file.")
            raise error(f"'{path}' is {kind}, not a regular file; give the path of the {noun} file.")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
