"""Agreement: how two maps agree, which layers to match, two models compared layer by layer, similarity measures."""
