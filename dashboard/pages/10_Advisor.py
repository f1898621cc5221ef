"""Advisor: which method, layer and normalization to trust. Drawn by dashboard/views/advisor/ through the one page shell."""

from dashboard.app.shell import run_page

run_page("advisor")
