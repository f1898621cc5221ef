"""torchvision architectures as templates, and which one a state_dict looks like (in one sentence).

* :func:`template` — an architecture built on the ``meta`` device (no memory, no random init;
  RegNets, whose constructor computes widths with tensors, are built on the CPU);
* :func:`classifier_key` — the class-score layer's weight (last Linear, else last Conv2d);
* :func:`fit_message` — ``None`` when a file's tensor shapes fit the architecture, else ONE
  sentence: the file's number of classes when only the classifier differs, the architecture the
  file looks like when it is another torchvision one (keys and shapes compared with
  :data:`SIGNATURES_FILE`), else the first mismatches.

Signatures: for every torchvision classification architecture, a digest of its state_dict keys
and one of its shapes without the classifier (so any number of classes matches), written by
``python -m methods.models.checkpoints.architectures`` into ``assets/torchvision_signatures.json``
(tests/models/checkpoints/test_declared.py recomputes several and checks the list is complete).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

__all__ = [
    "SIGNATURES_FILE",
    "densenet_keys",
    "template",
    "classifier_key",
    "comparable",
    "key_digest",
    "shape_digest",
    "build_signatures",
    "signatures",
    "looks_like",
    "fit_message",
]

SIGNATURES_FILE = Path(__file__).resolve().parents[1] / "assets" / "torchvision_signatures.json"

_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)
_AUX = ("aux1.", "aux2.", "AuxLogits.")
_V = TypeVar("_V")
_NO_AUX = ("googlenet", "inception_v3")


def densenet_keys(state: Mapping[str, _V]) -> dict[str, _V]:
    """torchvision's DenseNet files use old names (``norm.1.weight``); the modules are ``norm1``.
    Only the keys change: the values (tensors, shapes, declarations) are passed through."""
    out = {}
    for key, value in state.items():
        m = _DENSENET_OLD_KEY.match(key)
        out[m.group(1) + m.group(2) if m else key] = value
    return out


def template(arch: str | Callable[[], nn.Module], **kwargs) -> nn.Module:
    """An architecture built on the meta device (on the CPU if its constructor needs data): a
    torchvision name with ``kwargs``, or a zero-argument factory (timm models)."""
    if isinstance(arch, str):
        from torchvision.models import get_model

        def factory() -> nn.Module:
            return get_model(arch, weights=None, **kwargs)
    else:
        factory = arch
    try:
        with torch.device("meta"):
            return factory()
    except NotImplementedError:  # RegNet computes its block widths with tensor arithmetic
        return factory()


def classifier_key(model: nn.Module) -> str | None:
    """``<name>.weight`` of the last Linear (else last Conv2d) module: the class-score layer."""
    last_linear = last_conv = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_linear = name
        elif isinstance(module, nn.Conv2d):
            last_conv = name
    name = last_linear if last_linear is not None else last_conv
    return f"{name}.weight" if name is not None else None


def comparable(shapes: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    """Key -> shape with DenseNet's old names mapped, and without BatchNorm counters and the
    auxiliary heads of GoogLeNet / Inception (files differ in those without being different nets)."""
    renamed = densenet_keys(shapes)
    return {k: tuple(v) for k, v in renamed.items() if not k.endswith("num_batches_tracked") and not k.startswith(_AUX)}


def key_digest(shapes: Mapping[str, Sequence[int]]) -> str:
    return hashlib.sha256("\n".join(sorted(comparable(shapes))).encode()).hexdigest()[:16]


def shape_digest(shapes: Mapping[str, Sequence[int]], classifier: str | None) -> str:
    skip = {classifier, classifier[: -len("weight")] + "bias"} if classifier else set()
    items = sorted((k, v) for k, v in comparable(shapes).items() if k not in skip)
    return hashlib.sha256(repr(items).encode()).hexdigest()[:16]


def _arch_kwargs(arch: str) -> dict:
    return {"aux_logits": False, "init_weights": False} if arch in _NO_AUX else {}


def build_signatures(archs: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
    """arch -> {"keys", "shapes", "classifier"} computed from torchvision itself (slow: seconds)."""
    import torchvision.models as tvm

    out = {}
    for arch in archs if archs is not None else sorted(tvm.list_models(module=tvm)):
        model = template(arch, **_arch_kwargs(arch))
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        cls = classifier_key(model)
        out[arch] = {"keys": key_digest(shapes), "shapes": shape_digest(shapes, cls), "classifier": cls or ""}
        del model
    return out


@functools.lru_cache(maxsize=1)
def signatures() -> dict[str, dict[str, str]]:
    """The stored signatures (:data:`SIGNATURES_FILE`); empty if the file is missing."""
    try:
        return json.loads(SIGNATURES_FILE.read_text())["archs"]
    except (OSError, ValueError, KeyError):
        return {}


def looks_like(shapes: Mapping[str, Sequence[int]]) -> list[tuple[str, int]]:
    """(arch, number of classes) of every torchvision architecture whose keys and shapes (all but
    the classifier's) equal the file's.

    Examples:
        >>> net = template("resnet18", num_classes=7)
        >>> looks_like({k: v.shape for k, v in net.state_dict().items()})
        [('resnet18', 7)]
    """
    keys = key_digest(shapes)
    found = []
    plain = comparable(shapes)
    for arch, sig in signatures().items():
        if sig["keys"] != keys or sig["shapes"] != shape_digest(shapes, sig["classifier"] or None):
            continue
        cls = plain.get(sig["classifier"])
        found.append((arch, int(cls[0]) if cls else -1))
    return found


def _few(keys: list[str]) -> str:
    return ", ".join(repr(k) for k in keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def fit_message(
    arch: str,
    expected: Mapping[str, Sequence[int]],
    shapes: Mapping[str, Sequence[int]],
    *,
    num_classes: int,
    classifier: str | None,
) -> str | None:
    """``None`` when ``shapes`` (key -> shape, from the file) fit ``expected`` (the architecture's),
    else one sentence saying what to change (see the module docstring).

    Examples:
        >>> exp = {"fc.weight": (1000, 512), "fc.bias": (1000,)}
        >>> fit_message("x", exp, {"fc.weight": (10, 512), "fc.bias": (10,)}, num_classes=1000, classifier="fc.weight")
        "its classifier 'fc.weight' has 10 outputs (shape (10, 512); num_classes=1000 needs (1000, 512)): pass num_classes=10."
    """
    want, got = comparable(expected), comparable(shapes)
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    differ = [k for k in want if k in got and want[k] != got[k]]
    if not (missing or unexpected or differ):
        return None
    bias = classifier[: -len("weight")] + "bias" if classifier else None
    if (
        classifier in differ
        and not missing
        and not unexpected
        and set(differ) <= {classifier, bias}
        and got[classifier][1:] == want[classifier][1:]
    ):
        n = got[classifier][0]
        return (
            f"its classifier '{classifier}' has {n} outputs (shape {got[classifier]}; num_classes={num_classes} "
            f"needs {want[classifier]}): pass num_classes={n}."
        )
    others = [(a, n) for a, n in looks_like(shapes) if a != arch]
    if others:
        names = " or ".join(f"{a}" for a, _ in others[:3])
        n = others[0][1]
        classes = f" with {n} classes" if n > 0 else ""
        change = f"arch={others[0][0]!r}" + (f" and num_classes={n}" if n > 0 and n != num_classes else "")
        return f"its keys and shapes are those of {names}{classes}: choose {change}."
    parts = []
    if differ:
        parts.append(
            "shape mismatch: "
            + "; ".join(f"'{k}' is {got[k]} in the file, the model needs {want[k]}" for k in differ[:5])
        )
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_few(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_few(unexpected)}")
    return "it matches no torchvision architecture GradLens knows (" + "; ".join(parts) + ")."


def _write_signatures() -> None:  # pragma: no cover - run by hand when torchvision changes
    import torchvision

    data = {"torchvision": torchvision.__version__, "archs": build_signatures()}
    SIGNATURES_FILE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(data['archs'])} signatures to {SIGNATURES_FILE}")


if __name__ == "__main__":  # pragma: no cover
    _write_signatures()
