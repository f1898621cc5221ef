"""The Detection page: a detector's boxes or a segmenter's regions, and one object's maps."""
