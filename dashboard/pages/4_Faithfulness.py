"""Faithfulness: deletion and insertion curves. Drawn by dashboard/views/faithfulness.py through the one page shell."""

from dashboard.app.shell import run_page

run_page("faithfulness")
