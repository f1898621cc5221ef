"""Detection and segmentation: a detector's boxes or a segmenter's regions, one object's maps. Drawn by dashboard/views/detection/view.py through the one page shell."""

from dashboard.app.shell import run_page

run_page("detection")
