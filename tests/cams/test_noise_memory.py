"""Noise and masks are drawn per batch, not all up front (issue 26): the memory a call holds for its
draws does not grow with ``num_samples`` / ``num_masks``.

Measured by patching the torch sampler a method uses and counting what it made: the most draws
alive at once (weak references, freed when the method lets go of them) and the largest tensor a
single draw allocated. Before the fix Smooth Grad-CAM++ held all ``num_samples`` draws (3,000 draws
at 224 px: 610 MB) and RISE drew every mask's cells in one (num_masks, gh, gw) tensor (20,000
masks of 1-pixel cells at 224 px: 4 GB).
"""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

import methods
from methods.cams import perturb
from methods.cams.perturb import MASK_CHUNK, rise_masks
from tiny_models import GapNet


class _Sampler:
    """Wraps a torch sampler: counts draws alive at once and the largest one (in elements)."""

    def __init__(self, real) -> None:
        self.real, self.alive, self.most_alive, self.largest = real, 0, 0, 0

    def _freed(self) -> None:
        self.alive -= 1

    def __call__(self, *args, **kwargs):
        out = self.real(*args, **kwargs)
        self.alive += 1
        self.most_alive = max(self.most_alive, self.alive)
        self.largest = max(self.largest, out.numel())
        weakref.finalize(out, self._freed)
        return out


def _smooth_draws(monkeypatch, num_samples: int) -> _Sampler:
    sampler = _Sampler(torch.randn)
    monkeypatch.setattr(torch, "randn", sampler)
    net, x = GapNet(classes=3, seed=5).eval(), torch.randn(1, 3, 16, 16)
    methods.explain(net, x, "smoothgradcampp", layers="features.3", num_samples=num_samples, std=0.2, target=1)
    monkeypatch.undo()
    gc.collect()
    return sampler


def test_smoothgradcampp_holds_one_noise_draw_whatever_num_samples(monkeypatch):
    few, many = _smooth_draws(monkeypatch, 4), _smooth_draws(monkeypatch, 64)
    assert few.largest == many.largest == 3 * 16 * 16  # one (1, C, H, W) draw at a time
    assert many.most_alive <= 2 and few.most_alive <= 2  # was 64: every draw made before the first pass


def _rise_cells(monkeypatch, num_masks: int) -> _Sampler:
    sampler = _Sampler(torch.rand)
    monkeypatch.setattr(perturb.torch, "rand", sampler)
    net, x = GapNet(classes=3, seed=5).eval(), torch.randn(1, 3, 16, 16)
    methods.explain(net, x, "rise", layers="features.3", num_masks=num_masks, cell=1, batch_size=16, target=0)
    monkeypatch.undo()
    return sampler


def test_rise_draws_its_masks_chunk_by_chunk(monkeypatch):
    few, many = _rise_cells(monkeypatch, 2 * MASK_CHUNK), _rise_cells(monkeypatch, 20 * MASK_CHUNK)
    assert few.largest == many.largest == MASK_CHUNK * 16 * 16  # was num_masks x 16 x 16
    assert many.most_alive <= 2


@pytest.mark.parametrize("n", [1, MASK_CHUNK - 1, MASK_CHUNK + 3])
def test_rise_mask_i_does_not_depend_on_num_masks(n):
    """Mask i comes from chunk i // MASK_CHUNK, seeded by (seed, chunk): a longer run extends a shorter one."""
    long = rise_masks(2 * MASK_CHUNK + 5, (12, 10), cell=3, p=0.5, seed=9)
    assert torch.equal(rise_masks(n, (12, 10), cell=3, p=0.5, seed=9), long[:n])
    kept = float((long > 0.5).float().mean())
    assert 0.35 < kept < 0.65  # p = 0.5 of the cells kept, after smoothing


def test_rise_upsampling_is_chunked_for_a_large_cell():
    """cell 512 on a 16 px input: each mask is upsampled to 1024 x 1024, made a few masks at a time;
    the masks equal those of a one-mask-at-a-time construction."""
    ms = perturb._MaskSet(40, (16, 16), 512, 0.5, 3)
    together = ms.masks(torch.arange(40))
    alone = torch.cat([perturb._MaskSet(40, (16, 16), 512, 0.5, 3).masks(torch.tensor([i])) for i in range(40)])
    assert torch.equal(together, alone)
