"""Benchmarks over an evaluation's rows: the leaderboard, per-class tables, bootstrap intervals, the sign test."""
