"""Review: saved snapshots — list, filter, open (``?snapshot=<id>``), comment, judge, delete, export."""

from dashboard import review_page

if __name__ == "__main__":
    review_page.review_page()
