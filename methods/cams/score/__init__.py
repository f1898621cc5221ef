"""The score-weighted family: channel weights from extra forward passes, no gradients.

Notation used in every docstring below, for one sample and one layer:

* ``X``       — the preprocessed input (C_in, H, W); ``A^k`` — channel k of the layer (h, w);
* ``U``       — bilinear upsampling to (H, W), ``align_corners=False``;
* ``H_k = (U(A^k) - min U(A^k)) / (max U(A^k) - min U(A^k))`` — the channel's mask in [0, 1]
  (an all-zero mask when ``A^k`` is constant);
* ``p(Z)``    — softmax probability of the explained class c for input Z;
* ``X_b = 0`` — the baseline input: all zeros in the model's input space (for a model fed
  mean/std-normalized images, the mean image);
* ``y(A)``    — pre-softmax logit of class c when the layer outputs A.

Every method returns the RAW, signed map ``M = sum_k w_k A^k`` at the layer's resolution (equal to
the papers' ``sum_k w_k U(A^k)`` upsampled, since U is linear).

Deviations shared by the family:

* Deviation: the papers apply a ReLU to the map; here it is applied by the normalization stage
  (``methods.viz.normalize``, on by default), like the gradient family, so raw maps are signed.
* Deviation (``channels=k``): only the k channels of largest energy ``sum_ij (A^k_ij)^2`` are
  scored, the others get ``w_k = 0`` — about C/k times faster; the papers score every channel.
  ``channels="all"`` (default) or ``k >= C`` is the papers' method.

Channels that are skipped without a forward pass (the result equals running them):

* an all-zero ``A^k`` (common after a ReLU) gets ``w_k = 0``: its term ``w_k A^k`` is 0 whatever
  ``w_k`` a forward pass would give, so the map is unchanged;
* a constant non-zero ``A^k`` has the all-zero mask, so its masked input is the same for every
  such channel: it is scored once per sample ("empty-mask score") and shared.

Options common to the family (keyword-only, validated at construction):

* ``batch_size`` (int >= 1, 32): masked inputs per forward pass; the peak extra memory is
  O(batch_size x input) — no more than ``batch_size`` rows ever reach the model at once;
* ``channels`` ("all" | int k): see above;
* ``precision`` ("auto" | "fp32" | "bf16", default "auto"): bf16 runs the extra forwards under
  autocast. It pays only on hardware with native bf16 (CPUs with AMX or AVX512-BF16, recent GPUs);
  elsewhere it is emulated: on the development CPU (AVX-512 without BF16) Score-CAM took 2.3x as
  long in bf16 as in fp32. ``"auto"`` picks bf16 exactly where :func:`bf16_is_native` says it is
  native (:func:`methods._internal.torch_utils.resolve_precision`) and ``Explanation.options["precision"]`` records
  the precision that ran.
  All 4-D batches are fed ``channels_last`` when the model accepts it, and (Score-CAM family, from
  ``FOLD_MIN_ROWS`` forwards on) Conv->BatchNorm pairs run as one folded convolution, checked
  against the real logits first (:mod:`methods._internal.bn_folding`).

Progress: ``ctx.progress(done, total)`` after every batch, counting forward rows; it ends at
``(total, total)``. Forwards run under ``torch.inference_mode()``, in eval mode, without hooks; the
model's train/eval flags are restored and its parameters are never touched.
"""

from methods._internal.torch_utils import bf16_is_native

# Importing registers the methods: Score-CAM, SS-CAM, IS-CAM, then Ablation-CAM (the menus' order).
# isort: off
from methods.cams.score.masked import IsCam, ScoreCam, SsCam
from methods.cams.score.ablation import AblationCam, ablation_path
from methods.cams.score.engine import ScoreWarning
# isort: on

__all__ = ["ScoreCam", "SsCam", "IsCam", "AblationCam", "ScoreWarning", "ablation_path", "bf16_is_native"]
