"""Agreement with pytorch-grad-cam's FasterRCNNBoxScoreTarget and SemanticSegmentationTarget on
the same torchvision models (random weights, seeded).

Conventions. pytorch-grad-cam's box target scores ``IoU + class score`` of the detection with the
highest IoU with the reference box (any class, then the label is checked); GradLens's
``BoxTarget(..., similarity="class_plus_iou")`` is that score (its default ``"class"`` is the class
score alone: another scalar, so another map). pytorch-grad-cam min-max normalizes the ReLU'd map
and resizes it to the input with OpenCV (bilinear, half-pixel centres, as GradLens's upsampling);
GradLens's map is raw, so it is compared after the same ReLU and min-max. Its segmentation target
is ``sum(logits[c] * mask)``: Seg-Grad-CAM's sum, ``RegionTarget(c, mask=mask)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import methods
from methods._internal.torch_utils import upsample
from methods.targets import BoxTarget, RegionTarget, detect
from methods.targets.outputs import padding_note

pytest.importorskip("pytorch_grad_cam")
detection = pytest.importorskip("torchvision.models.detection")
segmentation = pytest.importorskip("torchvision.models.segmentation")

from pytorch_grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget, SemanticSegmentationTarget  # noqa: E402


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _as_peer(exp: methods.Explanation, layer: str) -> np.ndarray:
    """pytorch-grad-cam's display steps on GradLens's raw layer map: ReLU, min-max, then resize."""
    m = exp.maps[layer][0].clamp(min=0)
    m = (m - m.min()) / (m.max() - m.min()).clamp(min=1e-12)
    return upsample(m[None], exp.input_size)[0].numpy()


def test_box_target_grad_cam_matches_pytorch_grad_cam_on_faster_rcnn_mobilenet():
    torch.manual_seed(0)
    model = detection.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=3, min_size=160, max_size=160, box_score_thresh=0.0
    ).eval()
    with torch.no_grad():  # a head that separates the classes (random init gives ~uniform scores)
        model.roi_heads.box_predictor.cls_score.weight.normal_(0, 0.3)
    x = torch.rand(1, 3, 160, 160, generator=torch.Generator().manual_seed(1))
    det = detect(model, x)[0]
    assert len(det["boxes"]) > 0
    box = det["boxes"][0] + torch.tensor([1.0, -1.0, 2.0, 1.0])  # near, not equal (no IoU kinks)
    label = int(det["labels"][0])
    layer = "backbone.body.16"
    assert methods.default_layer(model, (160, 160)) == layer  # not roi_heads.box_roi_pool (one map per RoI)
    blocks = [b.name for b in methods.block_layers(model, (160, 160))]
    assert blocks[-3:] == [layer, "backbone.fpn.layer_blocks.1", "backbone.fpn.layer_blocks.0"]
    assert padding_note(model, (160, 160)) == "" and "pads it to" in padding_note(model, (100, 130))
    ours = methods.explain(model, x, "gradcam", layers=layer, target=BoxTarget(box, label, similarity="class_plus_iou"))
    cam = GradCAM(model=model, target_layers=[model.backbone.body._modules["16"]])
    peer = cam(x, targets=[FasterRCNNBoxScoreTarget(labels=[label], bounding_boxes=[box.numpy()[None]][0])])[0]
    assert _pearson(_as_peer(ours, layer), peer) >= 0.999


def test_region_target_grad_cam_matches_semantic_segmentation_target_on_lraspp():
    torch.manual_seed(0)
    model = segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3).eval()
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(96, 96, dtype=torch.bool)
    mask[20:60, 30:80] = True  # any region (their tutorial uses the argmax pixels of the class)

    class Out(torch.nn.Module):  # pytorch-grad-cam needs a tensor output: their tutorial's wrapper
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.m(z)["out"]

    layer = "backbone.16"
    assert methods.default_layer(model, (96, 96)) == layer
    ours = methods.explain(model, x, "gradcam", layers=layer, target=RegionTarget(1, mask=mask))
    cam = GradCAM(model=Out(model), target_layers=[model.backbone._modules["16"]])
    peer = cam(x, targets=[SemanticSegmentationTarget(1, mask.float().numpy())])[0]
    assert _pearson(_as_peer(ours, layer), peer) >= 0.999
