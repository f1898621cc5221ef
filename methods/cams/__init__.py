"""The CAM methods (one file per family) and, in :mod:`methods.cams.core`, the engine that runs them.

* :mod:`~methods.cams.core.registry` — the one plugin registry (:func:`register_method`);
* :mod:`~methods.cams.core.options` — typed, validated method options;
* :mod:`~methods.cams.core.base` — the base classes (recorded vs forward methods);
* :mod:`~methods.cams.core.recorder` — one forward (+ backward) that records many layers;
* :mod:`~methods.cams.core.layers` — candidate layers and the default layer;
* :mod:`~methods.cams.core.explain` — :func:`explain` / :func:`explain_many`;
* :mod:`~methods.cams.core.sites` — layer names with call sites (``relu#1``) and ``:act``;
* :mod:`~methods.cams.core.smoothing`, :mod:`~methods.cams.core.signed` — ``aug_smooth`` / ``eigen_smooth``
  and the signed-layer note;
* :mod:`~methods.cams.gradient`, :mod:`~methods.cams.smoothpp`, :mod:`~methods.cams.cam`,
  :mod:`~methods.cams.score`, :mod:`~methods.cams.guided`, :mod:`~methods.cams.fullgrad`,
  :mod:`~methods.cams.perturb`, :mod:`~methods.cams.baselines` — the built-in methods (importing
  :mod:`methods` registers them).
"""
