"""The GradLens Streamlit dashboard: thin pages over cache, errors, capture, widgets, navigation, runner.

Run from the repository root: ``streamlit run dashboard/Home.py`` (the package is importable
through the editable install, ``pip install -e .``).
"""
