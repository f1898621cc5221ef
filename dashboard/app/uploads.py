"""Uploads of one session: checkpoints and images a user brought, held by the session's state only.

Uploaded files cannot travel in a URL: the loaded model and the decoded picture live in
``st.session_state`` of the session that uploaded them and are freed with it. Each session holds
at most :data:`UPLOAD_LIMITS` (count and bytes in memory); a new upload beyond them drops the
oldest, and :func:`upload_notes` says so once. Checkpoints are read with ``weights_only=True``
through the library (:func:`methods.load_checkpoint`): nothing uploaded is executed.

A Hugging Face image classifier comes as its folder's files (:data:`HF_UPLOAD_LIMITS`: ``config.json``,
``model.safetensors``, optionally ``preprocessor_config.json``; each size bounded, no other file),
written to a private temporary folder and loaded by :func:`methods.models.huggingface.load_huggingface`
(safetensors only, a config asking for remote code refused), then the folder is deleted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import streamlit as st

from dashboard.core import services
from dashboard.core.services import ModelHandle
from methods.data.images import load_image
from methods.errors import CheckpointError, GradLensError, ImageError, OptionError
from methods.models.huggingface import load_huggingface

__all__ = [
    "UPLOAD_LIMITS",
    "uploaded_models",
    "uploaded_images",
    "session_upload",
    "upload_notes",
    "keep",
    "load_uploaded_checkpoint",
    "HF_UPLOAD_LIMITS",
    "load_uploaded_huggingface",
    "register_uploaded_image",
]

#: Per session: how many uploads of each kind, and how many bytes of them in memory (the weights
#: of the loaded checkpoints; the decoded pixels of the images). A larger single upload is refused.
UPLOAD_LIMITS: dict[str, tuple[int, int]] = {"models": (3, 1_200_000_000), "images": (8, 200_000_000)}
_UPLOAD_KEYS = {"models": "_uploaded_models", "images": "_uploaded_images"}
_NOTES_KEY = "_upload_notes"


def uploaded_models() -> dict[str, dict]:
    """This session's checkpoints, oldest first: id -> name, arch, num_classes, class_names,
    sha256, nbytes, handle (the loaded model)."""
    return st.session_state.setdefault(_UPLOAD_KEYS["models"], {})


def uploaded_images() -> dict[str, dict]:
    """This session's images, oldest first: id -> name, nbytes, image (decoded (H, W, 3) uint8)."""
    return st.session_state.setdefault(_UPLOAD_KEYS["images"], {})


def session_upload(store: dict[str, dict], upload_id: str, what: str) -> dict:
    """The entry of ``upload_id`` in this session's ``store``, or an error saying why it is not there."""
    info = store.get(upload_id)
    if info is None:
        raise GradLensError(
            f"the {what} {upload_id!r} is not in this session (uploaded in another one, or dropped to stay "
            "within the upload limits); uploaded files cannot travel in a URL. Upload it again."
        )
    return info


def upload_notes() -> list[str]:
    """Messages about uploads dropped to stay within :data:`UPLOAD_LIMITS` (shown once, then cleared)."""
    return st.session_state.pop(_NOTES_KEY, [])


def keep(kind: str, upload_id: str, entry: dict) -> None:
    """Add an upload to the session, then drop the oldest ones beyond the session's limits."""
    count, size = UPLOAD_LIMITS[kind]
    what = "checkpoint" if kind == "models" else "image"
    if entry["nbytes"] > size:
        error = CheckpointError if kind == "models" else ImageError
        raise error(
            f"it takes {entry['nbytes'] / 1e6:.0f} MB in memory, more than the {size / 1e6:.0f} MB a "
            f"session may hold for uploaded {what}s"
        )
    held = st.session_state.setdefault(_UPLOAD_KEYS[kind], {})
    held.pop(upload_id, None)
    held[upload_id] = entry  # the newest last
    while len(held) > count or sum(e["nbytes"] for e in held.values()) > size:
        old_id = next(iter(held))
        old = held.pop(old_id)
        st.session_state.setdefault(_NOTES_KEY, []).append(
            f"Dropped the oldest uploaded {what}, {old['name']}, to stay within {count} {what}s and "
            f"{size / 1e6:.0f} MB per session; upload it again to see it."
        )


def _weight_bytes(loaded) -> int:
    """Bytes the model's parameters and buffers take in memory (what an uploaded checkpoint costs)."""
    return int(sum(t.numel() * t.element_size() for t in loaded.model.state_dict().values()))


def load_uploaded_checkpoint(
    data: bytes, name: str, arch: str, num_classes: int, class_names: tuple[str, ...] | None
) -> str:
    """Load an uploaded checkpoint (errors raise), keep it in the session, return its id."""
    if class_names is not None and len(class_names) != num_classes:
        raise OptionError(
            f"{len(class_names)} class names for num_classes={num_classes}; give one name per class, or none"
        )
    sha = hashlib.sha256(data).hexdigest()
    model_id = f"upload:{hashlib.sha256(f'{sha}|{arch}|{num_classes}|{class_names}'.encode()).hexdigest()[:16]}"
    known = uploaded_models().get(model_id)
    if known is None:
        loaded = services.load_checkpoint(data, arch=arch, num_classes=num_classes, class_names=class_names)
        known = {
            "name": name,
            "arch": arch,
            "num_classes": num_classes,
            "class_names": class_names,
            "sha256": sha,
            "nbytes": _weight_bytes(loaded),
            "handle": ModelHandle(model_id, loaded, threading.Lock()),
        }
    keep("models", model_id, known)
    return model_id


#: The files of an uploaded Hugging Face folder and the most bytes each may have (the weights: the
#: session's model budget); None marks the optional one.
HF_UPLOAD_LIMITS: dict[str, int] = {
    "config.json": 1_000_000,
    "model.safetensors": UPLOAD_LIMITS["models"][1],
    "preprocessor_config.json": 1_000_000,
}
_HF_REQUIRED = ("config.json", "model.safetensors")


def _hf_files(files: Sequence[tuple[str, bytes]]) -> dict[str, bytes]:
    """The uploaded files by name, checked: known names only, each once, within its size, the
    required ones present (CheckpointError says which)."""
    named: dict[str, bytes] = {}
    for path, data in files:
        name = PurePosixPath(path.replace("\\", "/")).name  # a browser's folder upload names "folder/file"
        if name not in HF_UPLOAD_LIMITS:
            raise CheckpointError(
                f"{name!r} is not a file of a Hugging Face image classifier GradLens loads; upload "
                f"{', '.join(HF_UPLOAD_LIMITS)} only (safetensors weights: a pickle file can run code)"
            )
        if name in named:
            raise CheckpointError(f"{name!r} was uploaded twice; upload one folder's files at a time")
        if len(data) > HF_UPLOAD_LIMITS[name]:
            raise CheckpointError(
                f"{name} has {len(data) / 1e6:.1f} MB, more than the {HF_UPLOAD_LIMITS[name] / 1e6:.0f} MB allowed"
            )
        named[name] = data
    missing = [n for n in _HF_REQUIRED if n not in named]
    if missing:
        raise CheckpointError(
            f"the Hugging Face folder lacks {' and '.join(missing)}; upload config.json and model.safetensors "
            "(and preprocessor_config.json if the folder has one) together"
        )
    return named


def load_uploaded_huggingface(files: Sequence[tuple[str, bytes]], name: str = "") -> str:
    """Load a Hugging Face image classifier from its uploaded folder files ``(file name, bytes)``
    (errors raise), keep it in the session, return its id."""
    named = _hf_files(files)
    digest = hashlib.sha256()
    for key in sorted(named):
        digest.update(key.encode() + b"\0" + hashlib.sha256(named[key]).digest())
    sha = digest.hexdigest()
    model_id = f"upload:{hashlib.sha256(f'hf|{sha}'.encode()).hexdigest()[:16]}"
    known = uploaded_models().get(model_id)
    if known is None:
        with tempfile.TemporaryDirectory(prefix="gradlens_hf_", ignore_cleanup_errors=True) as tmp:
            for key, data in named.items():
                (Path(tmp) / key).write_bytes(data)
            loaded = load_huggingface(tmp)
        label = name or "Hugging Face model"
        kind = type(getattr(loaded.model, "wrapped", loaded.model)).__name__  # the class under LogitsView
        loaded = dataclasses.replace(loaded, name=f"hf:{label}", note=f"Hugging Face {kind}, uploaded ({label})")
        known = {
            "name": label,
            "arch": f"hf:{kind}",
            "num_classes": len(loaded.class_names),
            "class_names": tuple(loaded.class_names),
            "sha256": sha,
            "nbytes": _weight_bytes(loaded),
            "handle": ModelHandle(model_id, loaded, threading.Lock()),
        }
    keep("models", model_id, known)
    return model_id


def register_uploaded_image(data: bytes, name: str) -> str:
    """Decode an uploaded image once (ImageError raises), keep it in the session, return its id."""
    image_id = f"upload:{hashlib.sha256(data).hexdigest()[:16]}"
    entry = uploaded_images().get(image_id)
    if entry is None:
        image = load_image(data)
        entry = {"name": name, "image": image, "nbytes": int(image.nbytes)}
    keep("images", image_id, entry)
    return image_id
