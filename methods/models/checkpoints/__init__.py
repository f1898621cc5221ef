"""Your own weights, read safely: load_checkpoint (torchvision or timm architectures), the file readers,
what a file declares before its data is read, and the architecture templates it is checked against."""
