"""Transformer-native methods: attention rollout, Chefer relevance and LeGrad.

* :mod:`~methods.cams.transformer.attention` — attention weights recorded for one call (timm's
  fused kernel and Hugging Face's SDPA switched to eager and restored), the token -> patch grid step;
* :mod:`~methods.cams.transformer.base` — the shared recorded pass and the method base class;
* :mod:`~methods.cams.transformer.rollout`, :mod:`~methods.cams.transformer.chefer`,
  :mod:`~methods.cams.transformer.legrad` — the methods (importing :mod:`methods` registers them).
"""
