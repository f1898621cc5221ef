"""Layers: one method at every block output. Drawn by dashboard/views/layers.py through the one page shell."""

from dashboard.app.shell import run_page

run_page("layers")
