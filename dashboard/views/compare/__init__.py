"""The Compare page: ``view`` (controls, show) over ``data`` (pure: sides, rows, agreement numbers)."""
