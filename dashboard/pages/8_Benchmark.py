"""Benchmark: a data set's leaderboard. Drawn by dashboard/views/benchmark/ through the one page shell."""

from dashboard.app.shell import run_page

run_page("benchmark")
