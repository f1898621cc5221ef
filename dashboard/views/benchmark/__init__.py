"""The Benchmark page: ``view`` over ``data`` (reading tables) and ``evaluation`` (a small run here)."""
