"""Fetching torchvision weights into the torch hub cache, with progress, never leaving half a file.

:func:`download_weights` is the one place GradLens touches the network, and only when called
(``load_model(name, allow_download=True)`` calls it; nothing else does). The file goes where
:func:`methods.models.load_model` looks: ``<torch.hub.get_dir()>/checkpoints/<file name of the
weights URL>``. The download:

* streams into a temporary file next to the target (``.<name>.<random>.part``), reporting
  ``progress(done_bytes, total_bytes)`` after every MiB and at the end;
* checks the length against ``Content-Length`` and the sha256 against the prefix in the file name
  (torchvision names its files ``<arch>-<first 8 hex digits of sha256>.pth``);
* renames the temporary file onto the target only when both agree (``os.replace``, atomic), and
  deletes it on every failure (a dropped connection, a timeout, a wrong hash, a full disk, a
  :class:`methods.errors.Cancelled` raised by the progress callback), so the cache never holds a
  partial or corrupt file;
* gives up within ``timeout`` seconds when the server cannot be reached (the connection, name
  lookup included, is made in a helper thread with a deadline) or stops sending.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from methods._internal.checks import check_number
from methods._internal.progress import Progress
from methods.errors import OptionError, UnknownModelError, WeightsNotAvailableError, WrongTypeError, suggest
from methods.models.pypi_zoo import PYPI
from methods.models.task_zoo import TASK_MODELS
from methods.models.torchvision_zoo import TORCHVISION, cache_path, missing_message, tv_weights

__all__ = ["WeightsSource", "weights_source", "download_weights", "download_file"]

_CHUNK = 1 << 20  # 1 MiB


@dataclass(frozen=True)
class WeightsSource:
    """Where the weights of a catalog model come from and where they go.

    Attributes:
        name: catalog name.
        url: the file to fetch.
        path: the cache file :func:`methods.models.load_model` reads.
        sha256_prefix: leading hex digits of the file's sha256 (None: not checked).
        megabytes: the expected size, when known (for a "Download (N MB)" label).
    """

    name: str
    url: str
    path: Path
    sha256_prefix: str | None
    megabytes: float | None


def weights_source(name: str) -> WeightsSource:
    """The :class:`WeightsSource` of a torchvision catalog model.

    Raises:
        UnknownModelError: not a catalog name.
        OptionError: a catalog model that is not downloaded (bundled, or installed with pip).

    Examples:
        >>> src = weights_source("resnet18")
        >>> src.url, src.path.name, src.sha256_prefix
        ('https://download.pytorch.org/models/resnet18-f37072fd.pth', 'resnet18-f37072fd.pth', 'f37072fd')
    """
    if not isinstance(name, str):
        raise WrongTypeError(f"name must be a str, got {type(name).__name__}")
    if name in PYPI:
        raise OptionError(f"the weights of {name!r} are not downloaded: they install with pip ({PYPI[name].pip})")
    if name.startswith("scenes_"):
        raise OptionError(f"the weights of {name!r} ship with GradLens; there is nothing to download")
    if name not in TORCHVISION and name not in TASK_MODELS:
        known = [*TORCHVISION, *TASK_MODELS]
        raise UnknownModelError(
            f"unknown model {name!r} for download_weights.{suggest(name, known)} Downloadable models: {', '.join(known)}"
        )
    weights = tv_weights(name)
    path = cache_path(weights.url)
    stem = path.name.split(".")[0]
    prefix = stem.rsplit("-", 1)[1] if "-" in stem else ""
    ok = len(prefix) >= 6 and all(c in "0123456789abcdef" for c in prefix)
    mb = weights.meta.get("_file_size")
    return WeightsSource(name, weights.url, path, prefix if ok else None, float(mb) if mb else None)


def download_weights(name: str, *, progress: Progress | None = None, timeout: float = 10.0) -> Path:
    """Fetch the pre-trained weights of torchvision's ``name`` (ImageNet, or COCO/VOC for a detector/segmenter) into the torch hub cache.

    Nothing happens when the file is already there (``progress`` hears ``(size, size)``).

    Args:
        name: a torchvision catalog model (``"resnet50"``; see :func:`methods.list_models`).
        progress: keyword-only ``progress(done_bytes, total_bytes)`` after each MiB received and at the end
            (``total`` is ``Content-Length``, or the expected size when the server sends none);
            it may raise :class:`methods.errors.Cancelled` to stop (nothing is kept).
        timeout: keyword-only seconds to reach the server and, after that, the longest wait for
            the next chunk.

    Returns:
        The cache file (``weights_source(name).path``), complete and hash-checked.

    Raises:
        WeightsNotAvailableError: offline, timeout, dropped connection, wrong length or hash, or
            the cache is not writable; the message says why and how to get the file by hand.
        Cancelled: the progress callback cancelled.
        UnknownModelError / OptionError: ``name`` is not a downloadable catalog model.

    Examples:
        >>> download_weights("scenes_vgg")
        Traceback (most recent call last):
        ...
        methods.errors.OptionError: the weights of 'scenes_vgg' ship with GradLens; there is nothing to download
    """
    src = weights_source(name)
    if src.path.is_file():
        if progress is not None:
            size = src.path.stat().st_size
            progress(size, size)
        return src.path
    try:
        return download_file(
            src.url,
            src.path,
            sha256_prefix=src.sha256_prefix,
            progress=progress,
            timeout=timeout,
            expected_bytes=int(src.megabytes * 1e6) if src.megabytes else None,
        )
    except WeightsNotAvailableError as exc:
        raise WeightsNotAvailableError(
            f"Downloading the weights of {name!r} failed: {exc} " + missing_message(name, src.url, src.path)
        ) from exc


def _open(url: str, timeout: float) -> Any:
    """``urlopen(url)`` with a deadline that covers the name lookup too (urllib's timeout does not)."""
    result: dict[str, Any] = {}
    abandoned = threading.Event()

    def run() -> None:
        try:
            resp = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - http(s) URL from the catalog
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            result["error"] = exc
            return
        if abandoned.is_set():
            resp.close()
        else:
            result["response"] = resp

    worker = threading.Thread(target=run, name="gradlens-download-connect", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        abandoned.set()
        raise WeightsNotAvailableError(f"no answer from {url} within {timeout:g} s (offline?).")
    if "error" in result:
        exc = result["error"]
        raise WeightsNotAvailableError(f"cannot reach {url} ({type(exc).__name__}: {exc}).") from exc
    return result["response"]


def download_file(
    url: str,
    path: str | Path,
    *,
    sha256_prefix: str | None = None,
    progress: Progress | None = None,
    timeout: float = 10.0,
    expected_bytes: int | None = None,
) -> Path:
    """Stream ``url`` into ``path`` through a temporary file; rename only when complete and checked.

    Args:
        url: an ``http://`` or ``https://`` URL.
        path: the final file; its folder is created.
        sha256_prefix: keyword-only; the file's sha256 hex digest must start with it.
        progress: keyword-only ``progress(done_bytes, total_bytes)``; may raise Cancelled.
        timeout: keyword-only seconds to connect and the longest wait for the next chunk.
        expected_bytes: keyword-only total for ``progress`` when the server sends no length.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        WeightsNotAvailableError: unreachable, timeout, short or failed read, length or hash
            mismatch, not writable. No temporary or partial file is left behind.
        Cancelled: the progress callback raised it.
        OptionError: a URL that is not http(s), or a bad timeout.
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise OptionError(f"url must be an http:// or https:// URL, got {url!r}")
    timeout = check_number("timeout", timeout, minimum=0, exclusive_minimum=True)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise WeightsNotAvailableError(f"cannot write to {path.parent} ({exc}).") from exc
    tmp = Path(tmp_name)
    done = False
    try:
        with os.fdopen(fd, "wb") as out:
            resp = _open(url, timeout)
            with resp:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                shown = total if total is not None else (expected_bytes or 0)
                digest = hashlib.sha256()
                got = reported = 0
                read = getattr(resp, "read1", resp.read)  # read1: what has arrived, up to _CHUNK
                while True:
                    try:
                        chunk = read(_CHUNK)
                    except (OSError, ValueError) as exc:  # socket timeout, reset, http.client errors
                        raise WeightsNotAvailableError(
                            f"the download from {url} broke off after {got} bytes ({type(exc).__name__}: {exc})."
                        ) from exc
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    got += len(chunk)
                    if progress is not None and got - reported >= _CHUNK:
                        reported = got
                        progress(got, max(shown, got))
        if progress is not None and got > reported:
            progress(got, max(shown, got))
        if total is not None and got != total:
            raise WeightsNotAvailableError(
                f"the download from {url} broke off: {got} of {total} bytes arrived; nothing was saved."
            )
        hexdigest = digest.hexdigest()
        if sha256_prefix and not hexdigest.startswith(sha256_prefix.lower()):
            raise WeightsNotAvailableError(
                f"the file from {url} has sha256 {hexdigest[:16]}..., expected it to start with "
                f"{sha256_prefix} (a corrupt or altered file); nothing was saved."
            )
        os.replace(tmp, path)
        done = True
        return path
    except OSError as exc:  # writing or renaming (a full disk, permissions)
        raise WeightsNotAvailableError(f"cannot write {path} ({exc}).") from exc
    finally:  # also on Cancelled from the progress callback
        if not done:
            tmp.unlink(missing_ok=True)
