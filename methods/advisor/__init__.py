"""The Advisor: which saliency map to trust on YOUR model and images.

:func:`advise` evaluates a grid of methods x candidate layers x normalizations on an image set,
drops methods that fail the sanity check, ranks the rest by one metric with bootstrap intervals and
paired tests (against the best and against the random map), and states a recommendation with its
evidence. See docs/advisor.md.
"""

from methods.advisor.metrics import METRICS, AdvisorMetric, register_metric
from methods.advisor.normalizations import NORMALIZATIONS
from methods.advisor.options import AdviseOptions
from methods.advisor.result import Advice
from methods.advisor.run import advise

__all__ = ["advise", "AdviseOptions", "Advice", "AdvisorMetric", "METRICS", "NORMALIZATIONS", "register_metric"]
