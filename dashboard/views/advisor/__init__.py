"""The Advisor page (pages/10_Advisor.py): which map to trust on a model and an image set."""
