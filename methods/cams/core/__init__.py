"""The engine every CAM method runs on: registry, options, base classes, recorder, layers, explain.

The method files (:mod:`methods.cams.gradient` and the rest) import from here; nothing here imports
a method file.
"""
