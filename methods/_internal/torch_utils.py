"""The one home of the torch helpers every room shares.

* :func:`eval_mode` — eval mode for a block, every module's OWN train/eval flag restored after;
* :class:`HookScope` — forward hooks that live for one call: registered inside ``with``, removed
  in ``finally`` (also when the forward raises);
* :func:`unwrap_model` — an ``nn.Module`` from a module or a :class:`methods.LoadedModel`;
* :func:`check_input` — the one check of an input batch ``x`` (4-D, floating, finite);
* :func:`upsample` — bilinear resize of maps, ``align_corners=False`` (the library's one rule);
* :func:`channels_last_weights` — 4-D weights held channels_last for a block, restored after;
* :class:`ForwardRunner` — batched forwards under ``torch.inference_mode()``, bf16 autocast on
  the model's OWN device type, channels_last inputs, progress after every batch;
* :func:`bf16_is_native` — whether bf16 autocast pays on a device; :func:`resolve_precision` — the
  ONE rule that turns ``precision="auto"`` into ``"bf16"`` or ``"fp32"`` for a device;
* :data:`PRECISION_ENV` — ``$GRADLENS_PRECISION`` (``auto`` | ``fp32`` | ``bf16``): what ``"auto"``
  means on this machine; ``GRADLENS_PRECISION=fp32`` makes every default computation fp32;
* :data:`PRECISIONS` (computed precisions) and :data:`PRECISION_CHOICES` (what a user may ask for).

Where models run is :mod:`methods._internal.device`; progress callbacks are :mod:`methods._internal.progress`.

Nothing here registers a hook on a model outside a ``with`` block.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, Protocol, Union

import torch
import torch.nn.functional as F
from torch import nn

from methods._internal.device import default_device
from methods._internal.progress import Progress
from methods._internal.score_view import as_logits_model
from methods.errors import InputError, OptionError, RecorderError, WrongTypeError

__all__ = [
    "Precision",
    "PRECISIONS",
    "PRECISION_CHOICES",
    "eval_mode",
    "HookScope",
    "unwrap_model",
    "HoldsModule",
    "ModelLike",
    "model_device",
    "check_input",
    "upsample",
    "channels_last_weights",
    "bf16_is_native",
    "check_precision",
    "resolve_precision",
    "PRECISION_ENV",
    "ForwardRunner",
]

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[Literal["fp32", "bf16"], ...] = ("fp32", "bf16")
"""The precisions a computation RUNS in (what results record)."""
PRECISION_CHOICES: tuple[Precision, ...] = ("auto", *PRECISIONS)
"""What a caller may ask for: ``"auto"`` resolves per device (:func:`resolve_precision`)."""
PRECISION_ENV = "GRADLENS_PRECISION"
"""Environment variable that says what ``precision="auto"`` resolves to: ``auto`` (or unset: the
hardware rule), ``fp32`` (reproducible results on every machine) or ``bf16``."""


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Every module in eval mode for the block; each module's OWN flag restored afterwards
    (a model may mix modes, e.g. a frozen BatchNorm kept in eval inside a training model).

    Examples:
        >>> net = nn.Sequential(nn.BatchNorm2d(1), nn.Dropout()); _ = net[0].eval()
        >>> with eval_mode(net):
        ...     any(m.training for m in net.modules())
        False
        >>> net.training, net[0].training, net[1].training
        (True, False, True)
    """
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


class HookScope:
    """Hooks registered for one block and removed in ``finally``::

        with HookScope() as hooks:
            hooks.forward(module, fn)           # module.register_forward_hook(fn)
            hooks.forward_pre(module, fn)       # module.register_forward_pre_hook(fn)
            model(x)
        # every hook is gone here, also when model(x) raised

    Attributes:
        count: hooks currently registered by this scope (0 after the block).
    """

    def __init__(self) -> None:
        self._handles: list[Any] = []

    @property
    def count(self) -> int:
        return len(self._handles)

    def forward(self, module: nn.Module, fn: Callable) -> None:
        self._handles.append(module.register_forward_hook(fn))

    def forward_pre(self, module: nn.Module, fn: Callable) -> None:
        self._handles.append(module.register_forward_pre_hook(fn))

    def __enter__(self) -> HookScope:
        return self

    def __exit__(self, *exc: Any) -> None:
        while self._handles:
            self._handles.pop().remove()


class HoldsModule(Protocol):
    """A LoadedModel-like object: the module to explain is its ``.model``."""

    @property
    def model(self) -> nn.Module: ...


ModelLike = Union[nn.Module, HoldsModule]
"""What the explain functions accept: an ``nn.Module`` or a :class:`methods.LoadedModel`."""


def unwrap_model(model: Any) -> tuple[nn.Module, str | None]:
    """``(module, default_layer)`` from an ``nn.Module`` (default None) or a LoadedModel-like
    object with ``.model`` (and optionally ``.default_layer``). A Hugging Face ``transformers``
    model (which returns an output object) comes back as a
    :class:`methods._internal.score_view.LogitsView` of itself, so it returns (N, K) logits.

    Raises:
        WrongTypeError: anything else.
    """
    if isinstance(model, nn.Module):
        return as_logits_model(model), None
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module):
        return as_logits_model(inner), getattr(model, "default_layer", None)
    raise WrongTypeError(f"model must be a torch.nn.Module or a LoadedModel; got {type(model).__name__}")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); torch's default device for a model
    without tensors."""
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.get_default_device()


def check_input(x: Any, *, what: str = "x", batch: int | None = None) -> torch.Tensor:
    """The one check of a preprocessed input batch.

    Args:
        x: must be a floating-point (N, C, H, W) tensor with finite values.
        what: the argument's name in messages.
        batch: when given, N must equal it.

    Returns:
        ``x`` itself (not copied).

    Raises:
        InputError: not a tensor, not 4-D, not floating point, empty, or with NaN/inf values —
            the message says which and how to make a valid input.

    Examples:
        >>> check_input(torch.zeros(1, 3, 4, 4)).shape
        torch.Size([1, 3, 4, 4])
        >>> check_input(torch.zeros(3, 4, 4))
        Traceback (most recent call last):
        ...
        methods.errors.InputError: x must be a preprocessed (N, C, H, W) tensor; got shape (3, 4, 4). Add a batch dimension with x[None]
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"{what} must be a preprocessed (N, C, H, W) torch.Tensor; got {type(x).__name__}. "
            "LoadedModel.preprocess(image)[None] makes one from an (H, W, 3) uint8 image"
        )
    if x.ndim != 4:
        hint = ". Add a batch dimension with x[None]" if x.ndim == 3 else ""
        raise InputError(f"{what} must be a preprocessed (N, C, H, W) tensor; got shape {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise InputError(f"{what} must be a floating-point tensor; got dtype {x.dtype}. Use x.float()")
    if x.numel() == 0:
        raise InputError(f"{what} is empty; got shape {tuple(x.shape)}")
    if batch is not None and x.shape[0] != batch:
        raise InputError(f"{what} must hold {batch} sample(s); got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise InputError(
            f"{what} has {bad} NaN or infinite value(s); a map of such an input means nothing. "
            "Check the image and its preprocessing"
        )
    return x


def upsample(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize (``align_corners=False``) of a map (h, w) or a stack (N, h, w) to ``size``.

    Keeps the dtype of a floating input (float32 otherwise); identity (a copy) when the size
    already matches.

    Examples:
        >>> upsample(torch.tensor([[0.0, 1.0]]), (1, 4))
        tensor([[0.0000, 0.2500, 0.7500, 1.0000]])
    """
    size = (int(size[0]), int(size[1]))
    m = maps if maps.is_floating_point() else maps.float()
    squeeze = m.ndim == 2
    m = m[None] if squeeze else m  # (N, h, w)
    if tuple(m.shape[-2:]) == size:
        out = m.clone()
    else:
        out = F.interpolate(m[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]  # (N, H, W)
    return out[0] if squeeze else out


@contextlib.contextmanager
def channels_last_weights(net: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and channels_last 4-D parameters/buffers for the block (faster convolutions on
    CPU); the original tensors, layout and train/eval flags are put back afterwards."""
    swapped: list[tuple[torch.Tensor, torch.Tensor]] = []
    with eval_mode(net):
        try:
            for t in list(net.parameters()) + list(net.buffers()):
                if t.ndim == 4 and t.is_floating_point() and not t.is_contiguous(memory_format=torch.channels_last):
                    original = t.data
                    t.data = original.contiguous(memory_format=torch.channels_last)
                    swapped.append((t, original))
            yield net
        finally:
            for t, original in swapped:
                t.data = original


def bf16_is_native(device: torch.device | str | None = None) -> bool:
    """Whether ``precision="bf16"`` can be faster than fp32 on ``device`` (default: :func:`default_device`).

    CPU: AVX512-BF16 or AMX (else oneDNN emulates bf16: Score-CAM took 2.3x as long as fp32 on a
    CPU without them). CUDA: ``torch.cuda.is_bf16_supported()``. Unknown -> False.
    """
    device = default_device() if device is None else torch.device(device)
    try:
        if device.type == "cpu":
            return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        if device.type == "cuda":
            return bool(torch.cuda.is_bf16_supported())
    except (AttributeError, RuntimeError):
        pass
    return False


def check_precision(value: Any, *, what: str = "precision") -> str:
    """``value`` if it is one of :data:`PRECISIONS`, else an OptionError naming the choices."""
    if not isinstance(value, str) or value not in PRECISIONS:
        raise OptionError(f"{what}={value!r} is not valid; expected one of {list(PRECISIONS)}")
    return value


def resolve_precision(precision: Any, device: torch.device | str | None = None, *, what: str = "precision") -> str:
    """The precision a forward-bound computation runs in: the ONE rule for ``"auto"``.

    ``"auto"`` -> the value of ``$GRADLENS_PRECISION`` when it is ``fp32`` or ``bf16`` (the one
    switch for reproducible, machine-independent results: ``GRADLENS_PRECISION=fp32``); otherwise
    ``"bf16"`` (bfloat16 autocast, channels_last inputs) where the device runs bf16 natively
    (:func:`bf16_is_native`: CPUs with AMX or AVX512-BF16, CUDA GPUs with bf16), else ``"fp32"``.
    ``"fp32"`` and ``"bf16"`` are returned as given (an explicit choice is obeyed, also where bf16
    is emulated, and also when the variable says otherwise). Gradient maps never call this: they
    stay fp32.

    Args:
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"``.
        device: the device the work runs on (default: :func:`default_device`).
        what: the argument's name in messages.

    Returns:
        ``"fp32"`` or ``"bf16"`` (what results record).

    Raises:
        OptionError: any other value (the message lists :data:`PRECISION_CHOICES`), or a
            ``$GRADLENS_PRECISION`` that is not one of them.

    Examples:
        >>> resolve_precision("fp32"), resolve_precision("bf16", "cpu")
        ('fp32', 'bf16')
        >>> import os
        >>> expected = os.environ.get("GRADLENS_PRECISION", "auto").strip().lower()
        >>> if expected in ("", "auto"):
        ...     expected = "bf16" if bf16_is_native("cpu") else "fp32"
        >>> resolve_precision("auto", "cpu") == expected
        True
        >>> resolve_precision("fp16")
        Traceback (most recent call last):
        ...
        methods.errors.OptionError: precision='fp16' is not valid; expected one of ['auto', 'fp32', 'bf16']
    """
    if not isinstance(precision, str) or precision not in PRECISION_CHOICES:
        raise OptionError(f"{what}={precision!r} is not valid; expected one of {list(PRECISION_CHOICES)}")
    if precision != "auto":
        return precision
    forced = os.environ.get(PRECISION_ENV, "").strip().lower()
    if forced in PRECISIONS:
        return forced
    if forced not in ("", "auto"):
        raise OptionError(
            f"${PRECISION_ENV}={forced!r} is not valid; expected one of {list(PRECISION_CHOICES)} "
            "(unset it for the hardware rule)"
        )
    return "bf16" if bf16_is_native(device) else "fp32"


class ForwardRunner:
    """Runs batches through a function in the chosen precision, counting rows for progress.

    Use as a context manager (it enters ``torch.inference_mode`` and, for bf16, autocast on the
    DEVICE TYPE of ``device`` — the model's own — once for all batches, so autocast's weight-cast
    cache is reused)::

        with ForwardRunner(precision="bf16", device=x.device, total=T, progress=cb) as run:
            logits = run(lambda batch, fmt: model(batch), masked)   # (B, K) float32

    ``fn(batch, memory_format)`` receives the batch already in ``memory_format``
    (``torch.channels_last`` when possible) and should put any other 4-D tensor it makes in the
    same format.

    Attributes:
        autocast_device: the device type autocast runs on (None for fp32).
        channels_last: None until the first 4-D batch; then whether channels_last is used.
        done: rows run so far.
        notes: what fell back and why (for the caller's warning).
    """

    def __init__(
        self,
        *,
        precision: str,
        device: torch.device | str,
        total: int,
        progress: Progress | None = None,
        error: type[Exception] = RecorderError,
    ) -> None:
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.total = int(total)
        self.progress = progress
        self.error = error
        self.done = 0
        self.channels_last: bool | None = None
        self.autocast_device: str | None = None
        self.notes: list[str] = []
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> ForwardRunner:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.precision == "bf16":
            stack.enter_context(torch.autocast(device_type=self.device.type, dtype=torch.bfloat16))
            self.autocast_device = self.device.type
        self._stack = stack
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._stack is not None
        self._stack.close()
        self._stack = None

    def __call__(
        self,
        fn: Callable[[torch.Tensor, torch.memory_format], torch.Tensor],
        batch: torch.Tensor | Callable[[], torch.Tensor],
    ) -> torch.Tensor:
        """``fn`` on ``batch`` (B, ...) -> (B, K) float32 outputs; progress is reported after it.

        ``batch`` may be a zero-argument function making it: then the runner holds the only
        reference and the default-layout copy is freed as soon as the channels_last one exists.
        """
        if not isinstance(batch, torch.Tensor):
            batch = batch()
        if batch.ndim == 4 and self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
            out = fn(batch, torch.channels_last)
        elif batch.ndim == 4 and self.channels_last is None:
            # first batch: try channels_last on a copy, so a model that fails half-way (after
            # changing its input in place) is retried on the untouched batch
            try:
                out = fn(batch.clone(memory_format=torch.channels_last), torch.channels_last)
            except RuntimeError as exc:
                self.channels_last = False
                self.notes.append(
                    f"channels_last input failed ({str(exc).splitlines()[0][:120]}); used the default layout"
                )
                out = fn(batch, torch.contiguous_format)
            else:
                self.channels_last = True
        else:
            out = fn(batch, torch.contiguous_format)
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != batch.shape[0]:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise self.error(f"the model must return (batch, classes) logits; it returned {got}")
        self.done += int(batch.shape[0])
        if self.progress is not None:
            self.progress(self.done, self.total)
        return out.float()

    def finish(self) -> None:
        """Report completion (also when there was nothing to run: ``progress(0, 0)``)."""
        if self.progress is not None and (self.done != self.total or self.total == 0):
            self.progress(self.total, self.total)
