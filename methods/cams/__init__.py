"""The CAM methods and the machinery that runs them.

* :mod:`~methods.cams.registry` — the one plugin registry (:func:`register_method`);
* :mod:`~methods.cams.options` — typed, validated method options;
* :mod:`~methods.cams.base` — the base classes (recorded vs forward methods);
* :mod:`~methods.cams.recorder` — one forward (+ backward) that records many layers;
* :mod:`~methods.cams.layers` — candidate layers and the default layer;
* :mod:`~methods.cams.explain` — :func:`explain` / :func:`explain_many`;
* :mod:`~methods.cams.sites` — layer names with call sites (``relu#1``) and ``:act``;
* :mod:`~methods.cams.smoothing`, :mod:`~methods.cams.signed` — ``aug_smooth`` / ``eigen_smooth``
  and the signed-layer note;
* :mod:`~methods.cams.gradient`, :mod:`~methods.cams.smoothpp`, :mod:`~methods.cams.cam`,
  :mod:`~methods.cams.score`, :mod:`~methods.cams.guided`, :mod:`~methods.cams.fullgrad`,
  :mod:`~methods.cams.perturb`, :mod:`~methods.cams.baselines` — the built-in methods (importing
  :mod:`methods` registers them).
"""
