"""GradLens: class activation maps for convolutional networks."""
