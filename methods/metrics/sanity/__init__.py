"""Sanity checks: the model-parameter randomization test and class sensitivity."""
