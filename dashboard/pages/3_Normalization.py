"""Normalization: one raw map under every normalization choice. Drawn by dashboard/views/normalization.py through the one page shell."""

from dashboard.app.shell import run_page

run_page("normalization")
