"""Faithfulness: deletion/insertion curves, the perturbation protocol, Average Drop / Increase in Confidence, an image's scores at once."""
