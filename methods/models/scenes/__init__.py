"""The bundled scene networks: their architectures and weights (nets), how they were trained (train) and
evaluated (evaluation)."""
