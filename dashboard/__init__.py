"""The GradLens Streamlit dashboard, in rooms: ``core`` (pure: the page table, view state, requests),
``draw`` (figures and pictures), ``app`` (Streamlit: the one page shell, navigation, sidebar, cache),
``views`` (one per page); ``Home.py`` and ``pages/`` are two-line scripts.

Run from the repository root: ``streamlit run dashboard/Home.py`` (the package is importable
through the editable install, ``pip install -e .``).
"""
