"""The bundled detector and segmenter of the synthetic scenes: ``scenes_det`` and ``scenes_seg``.

Both are built from torchvision's own detection/segmentation pieces, so that explaining them takes
the same code path as explaining a user's torchvision model:

* ``scenes_det`` - :class:`torchvision.models.detection.FasterRCNN` (Ren et al. 2015,
  arXiv 1506.01497) on a small stride-8 conv backbone (one feature map ``"0"``, 16x16 for a
  128x128 scene), 9 anchors per cell (sizes 24/40/64 x aspect ratios 1:2, 1:1, 2:1), RoIAlign
  7x7, a two-layer MLP box head. Input: RGB in [0, 1]; the model normalises inside
  (``GeneralizedRCNNTransform`` with the scenes' mean/std) and ``min_size = max_size = 128``,
  so a 128x128 scene is never resized. Output in eval mode: torchvision's list of dicts
  ``{"boxes": (D, 4) xyxy, "labels": (D,) 1..8, "scores": (D,)}``; label 0 is background,
  label ``k`` is ``CLASS_NAMES[k - 1]``.
* ``scenes_seg`` - a small encoder-decoder (``scenes_vgg``'s feature layout, started from its
  weights, then dilated context at stride 8 and skip connections at strides 4, 2 and 1 - a
  U-Net-like decoder, Ronneberger et al. 2015, arXiv 1505.04597) with torchvision's segmentation output convention: ``{"out": (N, 9, H, W)}``
  logits, channel 0 = background, channel ``k`` = ``CLASS_NAMES[k - 1]``. Input: normalised
  with the scenes' mean/std, like the bundled classifiers.

Deviation: the detector's backbone uses BatchNorm (torchvision's pretrained detectors freeze it);
trained from scratch on a batch of 8 scenes it is stable, and in eval mode it is a fixed affine map.
"""

from __future__ import annotations

import pathlib
from collections import OrderedDict

import torch
from torch import nn

from methods.data.scenes import CLASS_NAMES
from methods.errors import BadWeightsError, MissingWeightsError, OptionError
from methods.models.scenes.nets import MEAN, STD, ScenesVGG

__all__ = [
    "INPUT_SIZE",
    "DETSEG",
    "DETSEG_LAYERS",
    "DETSEG_TASKS",
    "LABELS",
    "build_scenes_det",
    "build_scenes_seg",
    "build_detseg",
    "detseg_weights_path",
    "detseg_card_path",
    "load_detseg",
]

INPUT_SIZE = 128
DETSEG: tuple[str, ...] = ("scenes_det", "scenes_seg")
#: Default layer for maps: the detector's backbone output (the feature map RoIAlign reads) and the
#: segmenter's context stage (stride 8, before the decoder mixes in the skips).
DETSEG_LAYERS: dict[str, str] = {"scenes_det": "backbone.body.stage4", "scenes_seg": "context"}
DETSEG_TASKS: dict[str, str] = {"scenes_det": "detection", "scenes_seg": "segmentation"}
#: Output label/channel names: index 0 is the background.
LABELS: tuple[str, ...] = ("background", *CLASS_NAMES)

_ASSETS = pathlib.Path(__file__).resolve().parents[1] / "assets"


def _cbr(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class _DetBody(nn.Module):
    """Stride-8 conv stack: 128x128 -> 16x16 with 96 channels."""

    def __init__(self, width: int = 96):
        super().__init__()
        self.stem = nn.Sequential(_cbr(3, 24, 2), _cbr(24, 24))  # /2
        self.stage2 = nn.Sequential(_cbr(24, 48, 2), _cbr(48, 48))  # /4
        self.stage3 = nn.Sequential(_cbr(48, width, 2), _cbr(width, width))  # /8
        self.stage4 = nn.Sequential(_cbr(width, width, dilation=2), _cbr(width, width, dilation=4))  # /8, wide context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage4(self.stage3(self.stage2(self.stem(x))))


class _DetBackbone(nn.Module):
    """torchvision's backbone contract: ``out_channels`` and an OrderedDict of feature maps."""

    def __init__(self, width: int = 96):
        super().__init__()
        self.body = _DetBody(width)
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict([("0", self.body(x))])


def build_scenes_det() -> nn.Module:
    """``scenes_det``: a torchvision Faster R-CNN on a small stride-8 backbone (random weights)."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    backbone = _DetBackbone()
    anchors = AnchorGenerator(sizes=((24, 40, 64),), aspect_ratios=((0.5, 1.0, 2.0),))
    pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    rep = 128
    return FasterRCNN(
        backbone,
        num_classes=None,
        min_size=INPUT_SIZE,
        max_size=INPUT_SIZE,
        image_mean=list(MEAN),
        image_std=list(STD),
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=600,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_train=150,
        rpn_post_nms_top_n_test=100,
        rpn_batch_size_per_image=64,
        box_roi_pool=pool,
        box_head=TwoMLPHead(backbone.out_channels * 7 * 7, rep),
        box_predictor=FastRCNNPredictor(rep, len(LABELS)),
        box_score_thresh=0.05,
        box_detections_per_img=20,
        box_batch_size_per_image=32,
    )


class _Up(nn.Module):
    """Decoder step: upsample the coarse map, add the projected skip, one 3x3 conv-BN-ReLU."""

    def __init__(self, c_coarse: int, c_skip: int, c_out: int):
        super().__init__()
        self.coarse = nn.Conv2d(c_coarse, c_out, 1, bias=False)
        self.skip = nn.Conv2d(c_skip, c_out, 1, bias=False)
        self.fuse = _cbr(c_out, c_out)

    def forward(self, coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(self.coarse(coarse), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(up + self.skip(skip))


class ScenesSeg(nn.Module):
    """Encoder-decoder segmenter returning ``{"out": (N, 9, H, W)}`` logits (channel 0: background).

    ``features`` has the layout of ``scenes_vgg``'s (conv-BN-ReLU stacks and max-pooling, 128 ->
    16), so training starts from that classifier's weights: the shapes are told apart by features
    that already tell them apart. ``context`` widens the view at stride 8 (dilations 2 and 4), and
    three decoder steps add the stride 4, 2 and 1 features back (U-Net-like skips).
    """

    def __init__(self, num_classes: int = len(LABELS)):
        super().__init__()
        self.features = ScenesVGG().features  # indices 0-2: /1 (16 ch), 3-6: /2 (32), 7-13: /4 (64), 14-20: /8 (128)
        self.context = nn.Sequential(_cbr(128, 128, dilation=2), _cbr(128, 128, dilation=4))
        self.up4 = _Up(128, 64, 48)
        self.up2 = _Up(48, 32, 24)
        self.up1 = _Up(24, 16, 16)
        self.classifier = nn.Conv2d(16, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features
        s1 = f[0:3](x)
        s2 = f[3:7](s1)
        s4 = f[7:14](s2)
        s8 = self.context(f[14:21](s4))
        y = self.up1(self.up2(self.up4(s8, s4), s2), s1)
        return OrderedDict([("out", self.classifier(y))])


def build_scenes_seg() -> nn.Module:
    """``scenes_seg``: the small encoder-decoder segmenter (random weights)."""
    return ScenesSeg()


def build_detseg(name: str) -> nn.Module:
    """The architecture of ``name`` (``"scenes_det"`` or ``"scenes_seg"``) with random weights."""
    if name == "scenes_det":
        return build_scenes_det()
    if name == "scenes_seg":
        return build_scenes_seg()
    raise OptionError(f"unknown bundled detection/segmentation model {name!r}; choose one of {list(DETSEG)}")


def detseg_weights_path(name: str) -> pathlib.Path:
    """Where the bundled weights of ``name`` live."""
    return _ASSETS / f"{name}.safetensors"


def detseg_card_path(name: str) -> pathlib.Path:
    """Where the JSON model card of ``name`` lives."""
    return _ASSETS / f"{name}.json"


def load_detseg(name: str) -> nn.Module:
    """``name`` with its bundled weights, in eval mode.

    Raises:
        MissingWeightsError: the weights file is not there (a partial install).
        BadWeightsError: the file does not fit the architecture.
    """
    model = build_detseg(name)
    path = detseg_weights_path(name)
    if not path.is_file():
        raise MissingWeightsError(f"bundled weights for {name!r} are missing ({path}); reinstall GradLens")
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
        model.load_state_dict(state, strict=True)
    except (RuntimeError, OSError, ValueError) as exc:
        raise BadWeightsError(f"bundled weights {path} do not fit {name!r}: {exc}") from exc
    return model.eval()
