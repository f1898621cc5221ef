"""Sphinx configuration of the API reference, rendered from the docstrings.

Build (warnings are errors; the test command runs it through tests/test_habits.py)::

    python -m sphinx -W -b html docs/api /tmp/gradlens-api
"""

import methods

project = "GradLens"
version = release = methods.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon"]
autosummary_generate = True
autodoc_default_options = {"members": True, "ignore-module-all": True}  # a re-export is documented where it is defined
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
suppress_warnings = ["autosummary.import_cycle"]
