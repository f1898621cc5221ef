"""Sanity checks. Drawn by dashboard/views/sanity.py through the one page shell."""

from dashboard.app.shell import run_page

run_page("sanity")
