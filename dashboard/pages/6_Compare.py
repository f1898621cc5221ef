"""Compare models. Drawn by dashboard/views/compare/ through the one page shell."""

from dashboard.app.shell import run_page

run_page("compare")
