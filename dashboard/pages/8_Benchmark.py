"""Benchmark: a data set's leaderboard (means with bootstrap intervals, paired tests against the
random and centre maps), distributions, per-class numbers, and one image opened on the Methods page."""

from dashboard import benchmark_page

if __name__ == "__main__":
    benchmark_page.benchmark_page()
