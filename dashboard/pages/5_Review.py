"""Review: saved snapshots — list, filter, open (``?snapshot=<id>``), comment, judge, export."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from dashboard import review  # noqa: E402

if __name__ == "__main__":
    review.review_page()
