"""Precision in tests: closed forms are checked in fp32 on every machine, and the bf16 path once more
with its own stated tolerance — so the suite's verdict never depends on whether the CPU has AMX.

``precision="auto"`` resolves to bf16 where bf16 is native (:func:`methods.resolve_precision`), so a
test of an fp32 closed form that leaves the default in place would check a different computation on
an AMX machine. Such tests use the ``fp32`` fixture (``$GRADLENS_PRECISION=fp32`` for the test: the
documented switch), and the tests parametrised by the ``precision`` fixture run once per precision,
bf16 included, on every machine (emulated and slow where bf16 is not native, but these nets are tiny).
"""

from __future__ import annotations

from typing import Any

BF16_TOLERANCE: dict[str, float] = {"rtol": 2e-2, "atol": 5e-3}
"""What a bf16-autocast result may differ from its fp32 closed form by.

bf16 keeps 8 significand bits, so every rounding of an input, weight or activation is off by at most
2^-9 ≈ 0.2 % relative; a short chain of them, accumulated in fp32, stays within a few of those. Measured
on the hand-set nets of tests/cams/test_score.py and tests/metrics/faithfulness/test_faithfulness.py when this was
written (CPU without AMX, emulated bf16): at most 3.9e-3 absolute (Score-CAM weights ~0.3-0.7) and
1.3e-3 on the sum classifier's deletion curve (probabilities ~0.45-0.96)."""


def tolerance(precision: str, **fp32: Any) -> dict[str, Any]:
    """The ``assert_close`` / ``assert_allclose`` tolerances of a check in ``precision``: the test's
    own fp32 tolerances (``fp32``), or :data:`BF16_TOLERANCE` for bf16."""
    if precision == "fp32":
        return dict(fp32)
    if precision == "bf16":
        return dict(BF16_TOLERANCE)
    raise ValueError(f"precision={precision!r}: expected 'fp32' or 'bf16'")
