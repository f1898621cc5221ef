"""Agreement of the new methods with peer implementations: pytorch-grad-cam, torch-cam, Captum.

The peers are benchmark-time tools only (``pip install -r benchmarks/requirements-peers.txt``); the
library never imports them. Every peer runs on a deep copy of the model (pytorch-grad-cam's guided
backprop puts NEW ``nn.ReLU()`` objects back into the model it was given).

For each model and comparison it prints the Pearson correlation ``r`` and the max absolute
difference of the two maps, both brought to the peer's output convention (stated per line):

* ``norm`` — ReLU, then min-max to [0, 1] at the layer's grid, then bilinear resize to the input
  (pytorch-grad-cam's ``scale_cam_image``; ours with ``align_corners=False``, cv2's half-pixel rule);
* ``raw``  — the peer's raw tensor; ``max|d|`` is then relative to the peer's max |value|.

Where a disagreement has a known cause, a second line reproduces the peer's convention with
GradLens's own recorded tensors (``-> as peer``) to show that the cause explains it.

Run: ``PYTHONPATH=$PWD python benchmarks/peers_methods.py``. The figures in docs/methods.md come
from this script on the development machine (2 shared cores, AMD EPYC AVX2, no GPU).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
import torch.nn.functional as F

import methods
from methods._internal.torch_utils import upsample
from methods.cams.guided import guided_gradients
from methods.cams.smoothpp import input_noise
from methods.data.samples import load_sample

warnings.simplefilter("ignore")


def stats(ours, theirs, relative: bool = False) -> str:
    a = np.asarray(ours, dtype=np.float64).ravel()
    b = np.asarray(theirs, dtype=np.float64).ravel()
    r = np.corrcoef(a, b)[0, 1] if a.std() > 0 and b.std() > 0 else float("nan")
    d = np.abs(a - b).max() / (np.abs(b).max() if relative else 1.0)
    return f"r {r:7.4f}  max|d| {d:.2e}{' (rel)' if relative else ''}"


def _fit_scale(ours, theirs) -> np.ndarray:
    """``ours`` times the least-squares scale onto ``theirs`` (maps equal up to a positive factor:
    Guided Grad-CAM's Grad-CAM factor is min-max scaled by the peer, raw here)."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    return a * (a.ravel() @ b.ravel()) / (a.ravel() @ a.ravel())


def norm(raw: torch.Tensor, size) -> np.ndarray:
    """pytorch-grad-cam's convention for a (h, w) raw map: ReLU, min-max, resize to ``size``."""
    m = raw.clamp(min=0).double()
    m = m - m.min()
    m = m / (1e-7 + m.max())
    return upsample(m.float(), size).numpy()


def setups():
    torch.manual_seed(0)
    from torchvision.models import resnet18

    photo = load_sample("chelsea")
    rn = resnet18(weights=None).eval()
    x_rn = F.interpolate(
        torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255,
        size=(224, 224),
        mode="bilinear",
        align_corners=False,
    )[0]  # (3, 224, 224) in [0, 1]
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    yield "resnet18 (random weights), chelsea 224", rn, ((x_rn - mean) / std)[None], "layer4", 281
    for name in ("scenes_vgg", "scenes_resnet"):
        lm = methods.load_model(name)
        x = lm.preprocess(load_sample("scene_cross_diamond_moon"))[None]
        target = int(lm.model(x).argmax())
        yield f"{name} (bundled), scene_cross_diamond_moon 128", lm.model, x, lm.default_layer, target


def pytorch_grad_cam_rows(model, x, layer, target):
    from pytorch_grad_cam import EigenGradCAM, FullGrad, GradCAM, GradCAMElementWise, GuidedBackpropReLUModel
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    size = tuple(x.shape[-2:])
    tgt = [ClassifierOutputTarget(target)]
    ours = methods.explain_many(
        model,
        x,
        ["eigengradcam", "gradcam_elementwise", "fullgrad", "gradcam", "hirescam"],
        layers=[layer],
        target=target,
    )

    def peer(cls, **kw):
        m = copy.deepcopy(model)
        layers = [dict(m.named_modules())[layer]] if cls is not FullGrad else []
        with cls(model=m, target_layers=layers, **kw) as cam:
            return cam(input_tensor=x.clone(), targets=tgt)[0]

    eig = peer(EigenGradCAM)
    print(f"  EigenGradCAM        norm  {stats(norm(ours['eigengradcam'].maps[layer][0], size), eig)}")
    flipped = norm(-ours["eigengradcam"].maps[layer][0], size)
    print(f"    -> negated PC (the SVD's other sign)   {stats(flipped, eig)}")
    ew = peer(GradCAMElementWise)
    print(f"  GradCAMElementWise  norm  {stats(norm(ours['gradcam_elementwise'].maps[layer][0], size), ew)}")
    fg = peer(FullGrad)
    ours_fg = ours["fullgrad"].maps[layer][0]
    print(f"  FullGrad            norm  {stats((ours_fg - ours_fg.min()) / (ours_fg.max() - ours_fg.min()), fg)}")
    print(f"    -> as peer (each channel min-max scaled) {stats(_fullgrad_per_channel(model, x, target), fg)}")
    gb_model = GuidedBackpropReLUModel(model=copy.deepcopy(model), device="cpu")
    gb = gb_model(x.clone(), target_category=target)  # (H, W, 3)
    ours_gb, _ = guided_gradients(model, x, torch.tensor([target]))
    print(f"  GuidedBackprop      raw   {stats(ours_gb[0].permute(1, 2, 0).numpy(), gb, relative=True)}")
    cam_mask = peer(GradCAM)  # (H, W) in [0, 1]
    theirs_ggc = (cam_mask[..., None] * gb).sum(-1)
    ours_ggc = methods.explain(model, x, "guidedgradcam", layers=[layer], target=target, reduce="sum").maps[layer][0]
    print(
        f"  Guided Grad-CAM     sum_c {stats(_fit_scale(ours_ggc.numpy(), theirs_ggc), theirs_ggc, relative=True)}"
        "  (ours times its least-squares positive scale)"
    )


def _fullgrad_per_channel(model, x, target) -> np.ndarray:
    """pytorch-grad-cam's FullGrad from GradLens's recorded gradients: every channel of every term
    min-max scaled on its own (after resizing), summed, then the sum min-max scaled."""
    from methods.cams.fullgrad import bias_modules, effective_bias

    size = tuple(x.shape[-2:])
    rec = methods.record(
        model, x, [next(iter(bias_modules(model)))], target=target, input_gradient=True, sites=bias_modules(model)
    )
    named = dict(model.named_modules())

    def per_channel(t):  # (C, h, w) -> (C, H, W): each channel min-max, then resize
        t = t.abs().double()
        lo = t.flatten(1).amin(1)[:, None, None]
        t = t - lo
        t = t / (1e-7 + t.flatten(1).amax(1)[:, None, None])
        return upsample(t.float(), size)

    total = per_channel(x[0] * rec.input_gradient[0]).sum(0)
    for key, g in rec.site_gradients.items():
        b = effective_bias(named[key.split("#")[0]]).float()
        total = total + per_channel(g[0] * b[:, None, None]).sum(0)
    total = total - total.min()
    return (total / (1e-7 + total.max())).numpy()


def torchcam_rows(model, x, layer, target):
    from torchcam.methods import SmoothGradCAMpp

    m = copy.deepcopy(model)
    with SmoothGradCAMpp(m, target_layer=layer, num_samples=8, std=0.3, input_shape=tuple(x.shape[1:])) as extractor:
        scores = m(x.clone())
        torch.manual_seed(0)  # the same draws as seed=0 (tests/cams/test_smoothpp.py)
        theirs = extractor(target, scores, normalized=False)[0][0]  # (h, w), ReLU applied
    ours = methods.explain(model, x, "smoothgradcampp", layers=[layer], target=target, num_samples=8, std=0.3, seed=0)
    raw = ours.maps[layer][0].clamp(min=0)
    print(f"  SmoothGradCAMpp     raw   {stats(raw.numpy(), theirs.numpy(), relative=True)}  (matched seeds)")
    last_g = _sgcpp_last(model, x, layer, target, last_acts=False)
    print(f"    -> ReLU of the LAST noisy gradient, +1e-8 {stats(last_g, theirs.numpy(), relative=True)}")
    as_peer = _sgcpp_last(model, x, layer, target, last_acts=True)
    print(f"    -> as peer (and the LAST noisy input's activations) {stats(as_peer, theirs.numpy(), relative=True)}")


def _sgcpp_last(model, x, layer, target, last_acts: bool) -> np.ndarray:
    """torch-cam 0.5.0's SmoothGradCAMpp from GradLens's recordings: alpha from the clean
    activations, times ReLU of the LAST noisy gradient, +1e-8; with ``last_acts`` the weights also
    multiply the LAST noisy forward's activations (its activation hook is still enabled during the
    noisy forwards, and ``compute_cams`` reads the hook after ``_get_weights``)."""
    rec = methods.record(model, x, [layer], target=target)
    acts = rec.activations[layer].double()
    s2 = s3 = 0
    for d in input_noise(0, 8, (1, *x.shape[1:]), 0.3):
        noisy = methods.record(model, x + d, [layer], target=target)
        g, noisy_acts = noisy.gradients[layer].double(), noisy.activations[layer].double()
        s2, s3 = s2 + g * g, s3 + g**3
    s2, s3 = s2 / 8, s3 / 8
    alpha = s2 / (2 * s2 + (s3 * acts).sum(dim=(2, 3), keepdim=True) + 1e-8)
    w = (alpha * g.clamp(min=0)).sum(dim=(2, 3))
    return torch.einsum("nc,nchw->nhw", w, noisy_acts if last_acts else acts).clamp(min=0)[0].numpy()


def captum_rows(model, x, layer, target):
    from captum.attr import GuidedBackprop, Occlusion

    theirs = GuidedBackprop(copy.deepcopy(model)).attribute(x.clone(), target=target)[0]
    ours, _ = guided_gradients(model, x, torch.tensor([target]))
    print(f"  GuidedBackprop      raw   {stats(ours[0].numpy(), theirs.detach().numpy(), relative=True)}")
    peer = copy.deepcopy(model)
    occ = Occlusion(lambda inp: peer(inp).softmax(dim=1))
    win, stride = 16, 8  # (H - 16) / 8 is whole for H = 128 and 224: the windows tile exactly
    with torch.no_grad():
        theirs = occ.attribute(
            x.clone(),
            sliding_window_shapes=(x.shape[1], win, win),
            strides=(x.shape[1], stride, stride),
            baselines=0.0,
            target=target,
            perturbations_per_eval=32,
        )[0, 0]
    ours_occ = methods.explain(model, x, "occlusion", layers=[layer], target=target, window=win, stride=stride)
    print(f"  Occlusion           raw   {stats(ours_occ.maps[layer][0].numpy(), theirs.numpy(), relative=True)}")


def densenet_rows() -> None:
    """Grad-CAM at DenseNet-121 ``features.norm5`` (followed by a functional in-place ReLU): which
    activation and which gradient each peer pairs, against GradLens's three explicit choices."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from torchcam.methods import GradCAM as TorchCamGradCAM
    from torchvision.models import densenet121

    torch.manual_seed(0)
    model = densenet121(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    target = int(model(x).argmax())
    rec = methods.record(model, x, ["features.norm5", "features.norm5:act"], target=target)
    pre_a, post_a = rec.activations["features.norm5"], rec.activations["features.norm5:act"]
    pre_g, post_g = rec.gradients["features.norm5"], rec.gradients["features.norm5:act"]

    def gc(a, g):
        return torch.einsum("nc,nchw->nhw", g.mean(dim=(2, 3)), a)[0]

    ours = {
        "pre act x pre grad ('features.norm5')": gc(pre_a, pre_g),
        "post act x post grad ('features.norm5:act', the default)": gc(post_a, post_g),
        "post act x pre grad (mixed)": gc(post_a, pre_g),
    }
    m = copy.deepcopy(model)
    with GradCAM(model=m, target_layers=[m.features.norm5]) as cam:
        pgc = cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(target)])[0]
    m = copy.deepcopy(model)
    with TorchCamGradCAM(m, target_layer="features.norm5") as extractor:
        tc = extractor(target, m(x.clone()), normalized=False)[0][0]  # ReLU applied
    print(f"\n== densenet121 (random weights), Grad-CAM at features.norm5 (then F.relu(inplace=True)), target {target}")
    for label, raw in ours.items():
        print(f"  pytorch-grad-cam vs ours {label:58s} norm {stats(norm(raw, (224, 224)), pgc)}")
    for label, raw in ours.items():
        print(
            f"  torch-cam        vs ours {label:58s} raw  {stats(raw.clamp(min=0).numpy(), tc.numpy(), relative=True)}"
        )


def main() -> None:
    from importlib.metadata import version

    print(
        f"peers: grad-cam {version('grad-cam')}, torchcam {version('torchcam')}, "
        f"captum {version('captum')}; torch {torch.__version__}"
    )
    for title, model, x, layer, target in setups():
        print(f"\n== {title}: layer {layer}, target {target}")
        print(" pytorch-grad-cam")
        pytorch_grad_cam_rows(model, x, layer, target)
        print(" torch-cam")
        torchcam_rows(model, x, layer, target)
        print(" Captum")
        captum_rows(model, x, layer, target)
    densenet_rows()


if __name__ == "__main__":
    main()
