"""Test plugins for the batch and evaluate engines: importable by name in worker processes and Ray
actors (``tests/`` is on their path), registered when imported (``--plugins batch_plugins``)."""

from __future__ import annotations

import torch

from methods import ForwardMethod, register_method


@register_method(
    name="fails_on_flat",
    label="Fails on flat (test)",
    family="baseline",
    cost="none",
    summary="Test plugin: the channel sum, but it raises on a constant (flat) image.",
)
class FailsOnFlat(ForwardMethod):
    """Raises RuntimeError when any image of the batch is constant, like a method with a bug."""

    def compute_layer(self, ctx) -> torch.Tensor:
        spread = ctx.x.flatten(2).std(dim=2).amax(dim=1)  # (N,) largest per-channel spread
        if bool((spread < 1e-4).any()):
            raise RuntimeError("this method cannot explain a constant image")
        return ctx.activations.sum(dim=1)  # (N, h, w)


class BrokenSpec:
    """A worker spec whose model cannot be loaded (to test how an engine reports it)."""

    def build(self):
        raise FileNotFoundError("weights.safetensors is missing on this worker")


class SleepySpec:
    """A worker spec whose workers write their pid to ``folder`` once built, then sleep on every
    item (to test that workers die with a SIGKILLed parent)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def build(self):
        import os
        import pathlib
        import time

        pathlib.Path(self.folder, f"{os.getpid()}.pid").write_text("up")

        def work(items):
            time.sleep(600)
            return items

        return work


@register_method(
    name="sleepy_mean",
    label="Sleepy mean (test)",
    family="baseline",
    cost="none",
    summary="Test plugin: the channel mean, after a 0.2 s sleep (a run long enough to be killed mid-way).",
)
class SleepyMean(ForwardMethod):
    def compute_layer(self, ctx) -> torch.Tensor:
        import time

        time.sleep(0.2)
        return ctx.activations.mean(dim=1)  # (N, h, w)
