"""Methods side by side. Drawn by dashboard/views/methods.py through the one page shell."""

from dashboard.app.shell import run_page

run_page("methods")
