"""The CAM methods and the machinery that runs them.

* :mod:`~methods.cams.registry` — the one plugin registry (:func:`register_method`);
* :mod:`~methods.cams.options` — typed, validated method options;
* :mod:`~methods.cams.base` — the base classes (recorded vs forward methods);
* :mod:`~methods.cams.recorder` — one forward (+ backward) that records many layers;
* :mod:`~methods.cams.layers` — candidate layers and the default layer;
* :mod:`~methods.cams.explain` — :func:`explain` / :func:`explain_many`;
* :mod:`~methods.cams.gradient`, :mod:`~methods.cams.baselines`, :mod:`~methods.cams.score` — the
  built-in methods (importing :mod:`methods` registers them).
"""
