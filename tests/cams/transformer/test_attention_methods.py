"""Attention rollout, Chefer relevance and LeGrad against references written here.

The tiny transformer is timm's VisionTransformer (2 blocks, 2 heads, 8x8 input, 4x4 patches:
a class token + a 2x2 patch grid = 5 tokens) with seeded weights. The references re-run its
forward by hand (q, k, v, softmax written out), so their attention matrices and gradients do not
come from GradLens's hooks, and apply each paper's formula with plain loops.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import methods
from methods._internal.score_view import ScoreView
from methods.cams.transformer.attention import tokens_to_grid
from methods.errors import LayerError

T = 5  # tokens: class + 2x2 patches


def tiny_vit(zero_query: bool = False, avg: bool = False) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    pool = {"class_token": False, "global_pool": "avg"} if avg else {}
    m = VisionTransformer(
        img_size=8, patch_size=4, embed_dim=8, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=3, **pool
    ).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        if zero_query:  # q = 0: every attention row is uniform, 1/T
            for blk in m.blocks:
                blk.attn.qkv.weight[:8].zero_()
                blk.attn.qkv.bias[:8].zero_()
    return m


def by_hand(m: nn.Module, x: torch.Tensor):
    """The tiny ViT's forward written out: logits, per-layer A (N, heads, T, T), block tokens."""
    z = m.patch_embed(x)  # (N, 4, 8)
    if m.cls_token is not None:
        z = torch.cat([m.cls_token.expand(len(x), -1, -1), z], dim=1)
    z = z + m.pos_embed
    t = z.shape[1]
    atts, blocks = [], []
    for blk in m.blocks:
        h = blk.norm1(z)
        qkv = blk.attn.qkv(h).reshape(len(x), t, 3, 2, 4).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1)  # scale 1/sqrt(4)
        atts.append(a)
        o = (a @ v).transpose(1, 2).reshape(len(x), t, 8)
        z = z + blk.attn.proj(o)
        z = z + blk.mlp(blk.norm2(z))
        blocks.append(z)
    logits = m.head(m.norm(z)[:, 0]) if m.cls_token is not None else m.head(m.fc_norm(z.mean(dim=1)))
    return logits, atts, blocks


def naive_rollout(atts: list[torch.Tensor], rows: list[int] | None = None) -> torch.Tensor:
    """The rollout's class-token row (or the mean of ``rows``), with loops: (N, T)."""
    n, t = atts[0].shape[0], atts[0].shape[-1]
    rows = rows or [0]
    out = torch.zeros(n, t)
    for s in range(n):
        r = [[1.0 if i == j else 0.0 for j in range(t)] for i in range(t)]
        for a in atts:
            mix = [[float(a[s, :, i, j].mean()) + (1.0 if i == j else 0.0) for j in range(t)] for i in range(t)]
            mix = [[v / sum(row) for v in row] for row in mix]
            r = [[sum(mix[i][k] * r[k][j] for k in range(t)) for j in range(t)] for i in range(t)]
        out[s] = torch.tensor([sum(r[i][j] for i in rows) / len(rows) for j in range(t)])
    return out


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def test_rollout_equals_a_naive_reference(x):
    m = tiny_vit()
    _, atts, _ = by_hand(m, x)
    exp = methods.explain(m, x, "rollout")
    ref = tokens_to_grid(naive_rollout([a.detach() for a in atts]), (2, 2))
    assert exp.maps[exp.layers[0]].shape == (2, 2, 2)
    torch.testing.assert_close(exp.maps[exp.layers[0]], ref, atol=1e-5, rtol=1e-5)


def test_rollout_of_an_average_pooled_vit_reads_the_mean_patch_row(x):
    m = tiny_vit(avg=True)
    logits, atts, _ = by_hand(m, x)
    exp = methods.explain(m, x, "rollout")
    torch.testing.assert_close(exp.logits, logits.detach(), atol=1e-5, rtol=1e-5)  # the hand forward is the model's
    ref = tokens_to_grid(naive_rollout([a.detach() for a in atts], rows=[0, 1, 2, 3]), (2, 2))  # no prefix token
    torch.testing.assert_close(exp.maps[exp.layers[0]], ref, atol=1e-5, rtol=1e-5)


def test_rollout_of_uniform_attention_is_the_closed_form(x):
    # M = (J/T + I)/2 per layer; two layers: M^2 = (3J/T + I)/4, class row on a patch: 3/(4T) = 0.15
    exp = methods.explain(tiny_vit(zero_query=True), x, "rollout")
    torch.testing.assert_close(exp.maps[exp.layers[0]], torch.full((2, 2, 2), 0.15), atol=1e-6, rtol=0)


def test_chefer_equals_the_hand_formula(x):
    m = tiny_vit()
    target = torch.tensor([2, 0])
    logits, atts, _ = by_hand(m, x)
    grads = torch.autograd.grad(logits.gather(1, target.view(-1, 1)).sum(), atts)
    ref = torch.zeros(2, T)
    for s in range(2):
        r = torch.eye(T)
        for a, g in zip(atts, grads):
            abar = torch.zeros(T, T)
            for i in range(T):
                for j in range(T):
                    abar[i, j] = sum(max(float(g[s, h, i, j] * a[s, h, i, j]), 0.0) for h in range(2)) / 2
            r = r + abar @ r
        ref[s] = r[0]
    exp = methods.explain(m, x, "chefer", target=target)
    torch.testing.assert_close(exp.maps[exp.layers[0]], tokens_to_grid(ref, (2, 2)), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(ref[:, 1:], torch.zeros(2, 4))  # a map that could have been wrong


def test_legrad_equals_the_hand_formula(x):
    m = tiny_vit()
    target = torch.tensor([1, 1])
    _, atts, blocks = by_hand(m, x)
    ref = torch.zeros(2, T)
    for a, z in zip(atts, blocks):
        s_l = m.head(m.norm(z)[:, 0])[:, 1].sum()  # layer l's tokens read out by the model's head
        g = torch.autograd.grad(s_l, a, retain_graph=True)[0]
        for s in range(2):
            for j in range(T):
                ref[s, j] += sum(max(float(g[s, h, i, j]), 0.0) for h in range(2) for i in range(T)) / (2 * T) / 2
    exp = methods.explain(m, x, "legrad", target=target)
    torch.testing.assert_close(exp.maps[exp.layers[0]], tokens_to_grid(ref, (2, 2)), atol=1e-6, rtol=1e-4)
    assert ref[:, 1:].abs().sum() > 1e-4


def _hooks(m: nn.Module) -> int:
    return sum(len(mod._forward_hooks) + len(mod._backward_hooks) for mod in m.modules())


@pytest.mark.parametrize("method", ["rollout", "chefer", "legrad"])
def test_fused_attention_flag_and_hooks_restored_also_after_a_raise(x, method):
    m = tiny_vit()
    m.blocks[1].attn.fused_attn = True
    m.blocks[0].attn.fused_attn = False  # each module's own flag comes back
    before = _hooks(m)
    methods.explain(m, x, method)
    assert [b.attn.fused_attn for b in m.blocks] == [False, True] and _hooks(m) == before

    def boom(*_):
        raise RuntimeError("boom")

    h = m.head.register_forward_hook(boom)
    with pytest.raises(RuntimeError, match="boom"):
        methods.explain(m, x, method)
    h.remove()
    assert [b.attn.fused_attn for b in m.blocks] == [False, True] and _hooks(m) == before
    assert not m.training and all(p.grad is None for p in m.parameters())


def test_fused_and_eager_attention_give_the_same_logits(x):
    m = tiny_vit()
    with torch.no_grad():
        fused = m(x)
    exp = methods.explain(m, x, "rollout")
    torch.testing.assert_close(exp.logits, fused, atol=1e-5, rtol=1e-5)


class _Logits(ScoreView):
    def read(self, output):
        return output.logits


def test_hugging_face_vit_rollout_matches_its_own_attentions_and_restores_sdpa(x):
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    cfg = ViTConfig(
        image_size=8, patch_size=4, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=16, num_labels=3,
    )  # fmt: skip
    hf = ViTForImageClassification(cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    impl = hf.config._attn_implementation
    exp = methods.explain(_Logits(hf), x, "rollout")
    assert hf.config._attn_implementation == impl
    hf.config._attn_implementation = "eager"
    with torch.no_grad():
        own = hf(x, output_attentions=True).attentions  # transformers' own attention output
    hf.config._attn_implementation = impl
    torch.testing.assert_close(
        exp.maps[exp.layers[0]], tokens_to_grid(naive_rollout(list(own)), (2, 2)), atol=1e-5, rtol=1e-5
    )
    for name in ("chefer", "legrad"):
        out = methods.explain(_Logits(hf), x, name).maps
        assert next(iter(out.values())).shape == (2, 2, 2)


def test_a_cnn_is_refused_with_one_line_and_menus_can_ask_first():
    cnn = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    for name in ("rollout", "chefer", "legrad"):
        spec = methods.get_method(name)
        reason = spec.why_not(cnn)
        assert reason and "\n" not in reason and "vision transformers only" in reason
        assert not spec.applies_to(cnn) and spec.applies_to(tiny_vit())
        with pytest.raises(LayerError, match="does not apply.*no recordable self-attention"):
            methods.explain(cnn, torch.rand(1, 3, 8, 8), name)
    assert methods.get_method("gradcam").applies_to(cnn)
