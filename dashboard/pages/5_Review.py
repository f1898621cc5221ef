"""Review: saved snapshots — list, filter, open (``?snapshot=<id>``), comment, judge, export."""

from dashboard import review

if __name__ == "__main__":
    review.review_page()
