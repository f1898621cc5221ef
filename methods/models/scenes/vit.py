"""``scenes_vit``: a small timm Vision Transformer trained on :mod:`methods.data.scenes`.

The bundled CNNs (:mod:`methods.models.scenes.nets`) have a transformer sibling so that
transformer-native methods (attention rollout, Chefer relevance, LeGrad) and token maps are
measured on a *trained* transformer offline, and the Compare page can show a CNN beside a ViT
trained on the same task.

Layout: timm's ``VisionTransformer`` (Dosovitskiy et al. 2021, https://arxiv.org/abs/2010.11929)
in its *hybrid* form (their section 3.1: the patch embedding is a CNN's feature map): the
embedding is ``scenes_vgg``'s ``features`` (trained on the same scenes, frozen while the ViT
trained) followed by a 2x2 stride-2 convolution, giving an 8x8 token grid on a 128x128 input
(64 patch tokens, as 16x16 patches give; no class token); then ``embed_dim`` 128, ``depth`` 4
pre-norm blocks of 4 heads, MLP ratio 4, global average pooling + ``fc_norm``, linear ``head``.
1.15 M parameters (4.6 MB as float32 safetensors). Same inputs as the CNNs:
:func:`methods.models.scenes.nets.preprocess`, ``MEAN``/``STD``.

Deviation: a plain ViT (16x16 linear patchify) did not train on one shared CPU core in the time
this project gives a training run: at chance (loss 2.09 = log 8) after 400 steps of 64 scenes
(peak learning rate 1e-3, class token); with a 4-layer convolutional stem
(``stem="conv"``, Xiao et al. 2021, https://arxiv.org/abs/2106.14881), average pooling, 5e-4 and the
CNNs' crop curriculum, the loss fell only to 1.87 in 600 steps (13 % held-out accuracy after the crop
phase). The shipped ``stem="vgg"`` hybrid reaches the accuracy goal in minutes. So the transformer
blocks are trained here, but the features they read are scenes_vgg's: on the Compare page the
ViT's ``patch_embed`` row is scenes_vgg's last layer seen through a 2x2 convolution, and the
difference between the two models lives in the four attention blocks.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from methods.errors import OptionError

__all__ = ["VIT_CONFIG", "VIT_DEFAULT_LAYER", "build_scenes_vit"]

#: Keyword arguments of timm's ``VisionTransformer`` for ``scenes_vit`` (also in the model card).
VIT_CONFIG: dict = {
    "img_size": 128,
    "patch_size": 16,
    "embed_dim": 128,
    "depth": 4,
    "num_heads": 4,
    "mlp_ratio": 4.0,
    "class_token": False,
    "global_pool": "avg",
}

#: The layer token-map methods read by default: the last block's output, which the average pool
#: reads token by token (no class token; :mod:`methods.cams.core.families` picks it too). Grad-CAM
#: pointing on fresh scenes: 0.64 here against 0.26 at ``blocks.3.norm1`` (docs/scenes.md).
VIT_DEFAULT_LAYER = "blocks.3"


def _conv_stem_class() -> type:
    from timm.layers import PatchEmbed

    class ConvStemEmbed(PatchEmbed):
        """timm's ``PatchEmbed`` whose ``proj`` is a convolutional stem (Xiao et al. 2021,
        https://arxiv.org/abs/2106.14881): four stride-2 3x3 conv-BN-ReLU (3 -> 16 -> 32 -> 64 -> 128
        channels, 128 px -> 8x8) and a 1x1 conv to ``embed_dim``. Same token grid as 16x16 patches."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            chans, layers = (3, 16, 32, 64, 128), []
            for c_in, c_out in zip(chans[:-1], chans[1:]):
                layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            layers.append(nn.Conv2d(chans[-1], self.proj.out_channels, 1))
            self.proj = nn.Sequential(*layers)  # type: ignore[assignment]  # timm types proj as Conv2d

    return ConvStemEmbed


def _vgg_stem_class(features: Callable[[], nn.Module]) -> type:
    from timm.layers import PatchEmbed

    class VGGStemEmbed(PatchEmbed):
        """timm's ``PatchEmbed`` whose ``proj`` is ``scenes_vgg``'s ``features`` (128 channels on a
        16x16 grid) and a 2x2 stride-2 conv to ``embed_dim``: the hybrid ViT of Dosovitskiy et al.
        2021 (section 3.1) with a CNN trained on the same scenes. Same 8x8 token grid."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.proj = nn.Sequential(features(), nn.Conv2d(128, self.proj.out_channels, 2, stride=2))  # type: ignore[assignment]

    return VGGStemEmbed


def build_scenes_vit(
    num_classes: int = 8,
    stem: str = "patch",
    dynamic: bool = False,
    vgg_features: Callable[[], nn.Module] | None = None,
) -> nn.Module:
    """A freshly initialised ``scenes_vit`` (timm ``VisionTransformer`` with :data:`VIT_CONFIG`);
    ``stem="conv"`` swaps the 16x16 patchify for a convolutional stem on the same grid.
    ``dynamic=True`` (training only) takes other input sizes, the position embeddings resampled;
    its state dict is the same as the shipped model's. ``stem="vgg"`` (the shipped hybrid) needs
    ``vgg_features``: a function that builds scenes_vgg's ``features`` (``nets`` passes it; this
    module does not import ``nets``)."""
    from timm.models.vision_transformer import VisionTransformer

    extra: dict = {"dynamic_img_size": True} if dynamic else {}
    if stem == "conv":
        extra["embed_layer"] = _conv_stem_class()
    elif stem == "vgg":
        if vgg_features is None:
            raise OptionError("stem='vgg' needs vgg_features (use methods.models.scenes.nets.build('scenes_vit'))")
        extra["embed_layer"] = _vgg_stem_class(vgg_features)
    return VisionTransformer(num_classes=num_classes, **VIT_CONFIG, **extra)
