"""Figures and pictures (pure: numpy, plotly, PIL); palette and curve styles from methods.viz.styles."""
