"""Review: saved snapshots. Drawn by dashboard/views/review.py through the one page shell."""

from dashboard.app.shell import run_page

run_page("review")
