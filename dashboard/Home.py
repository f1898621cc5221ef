"""GradLens home: one image's map, the prediction, and the methods the library knows.

Run from the repository root: ``streamlit run dashboard/Home.py``. The page is drawn by
dashboard/views/home.py through the one page shell (dashboard/app/shell.py).
"""

from dashboard.app.shell import run_page

run_page("home")
