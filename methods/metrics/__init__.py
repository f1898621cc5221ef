"""How good a map is, in families (each imports only from rooms below it):

* :mod:`methods.metrics.faithfulness` — does the map follow the model's evidence: deletion and
  insertion curves (``curves``), the perturbation protocol (``perturbation``), Average Drop /
  Increase in Confidence (``confidence``), every score of an image at once (``image_scores``) and
  ROAD's MoRF / LeRF curves (``road``) with their noisy linear imputation (``imputation``);
* :mod:`methods.metrics.agreement` — how two maps agree (``maps``), which layers to set side by
  side (``matching``), two models compared layer by layer (``compare``), the similarity
  measures of the sanity checks (``similarity``), and how the METRICS agree on ranking the
  methods (``metric_agreement``);
* :mod:`methods.metrics.sanity` — the model-parameter randomization test (``check``, with the
  blocks it destroys in ``randomize``), its smooth and efficient variants sMPRT / eMPRT
  (``variants``) and class sensitivity (``class_check``);
* :mod:`methods.metrics.benchmark` — the leaderboard over an evaluation's rows;
* :mod:`methods.metrics.localization` — the pointing game and its energy variant.
"""
