"""The transformer families' default layers (methods/cams/core/families.py): a timm ViT with a
class-token read-out defaults to the last block's norm1, an average-pooled one to the last block."""

from __future__ import annotations

import pytest
import torch

from methods.cams.core.layers import default_layer
from methods.cams.core.recorder import record

timm = pytest.importorskip("timm")


def _vit(**kw: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=16, embed_dim=8, depth=2, num_heads=2, num_classes=3, **kw
    ).eval()


@pytest.mark.parametrize("pool", ["avg", "avgmax", "max"])
def test_an_average_pooled_vit_defaults_to_its_last_block(pool):
    assert default_layer(_vit(class_token=False, global_pool=pool), (32, 32)) == "blocks.1"


def test_a_class_token_read_out_keeps_the_norm1_default():
    assert default_layer(_vit(), (32, 32)) == "blocks.1.norm1"  # global_pool="token"
    assert default_layer(_vit(class_token=True, global_pool="avg"), (32, 32)) == "blocks.1"


def test_average_pool_gives_every_patch_token_of_the_last_block_the_head_row_over_t():
    """Closed form: with the final norm removed, score_c = w_c . mean_t(z_t) + b_c, so
    d score_c / d z_t = w_c / T for each of the T = 4 patch tokens — the tokens DO reach the score
    (with a class-token read-out they get exactly 0, tests/cams/core/test_layouts.py)."""
    vit = _vit(class_token=False, global_pool="avg", fc_norm=False)
    vit.norm = torch.nn.Identity()
    x = torch.rand(1, 3, 32, 32)
    rec = record(vit, x, ["blocks.1"], target=2)
    grads = rec.gradients["blocks.1"]  # (1, C, 2, 2) after the token layout
    want = (vit.head.weight[2] / 4).detach().view(1, 8, 1, 1).expand(1, 8, 2, 2)
    torch.testing.assert_close(grads, want, rtol=1e-5, atol=1e-7)
