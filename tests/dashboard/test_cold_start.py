"""The first page of a cold server imports only what it draws with: importing Home's module chain
(the page shell, the sidebar, the caches and Home's view) in a fresh process loads none of the
heavy libraries other pages or commands need. A machine-independent guard for the cold start
(the timing itself is printed by benchmarks/cold_start.py, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from methods.data import photos

ROOT = Path(__file__).resolve().parents[2]

#: Not imported by Home's module chain: Ray (the batch engine), pandas and pyarrow (tables of
#: other pages; Streamlit imports them when a table is drawn), transformers (uploads of HF
#: models), SciPy and skimage.io (skimage.data's readers), scikit-learn and matplotlib.
NOT_ON_HOME = ("ray", "pyarrow", "pandas", "transformers", "scipy", "skimage.io", "sklearn", "matplotlib")


def test_home_module_chain_imports_no_heavy_library():
    code = (
        "import sys\n"
        "import dashboard.app.shell, dashboard.views.home\n"
        f"print(','.join(m for m in {NOT_ON_HOME!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "", f"Home's module chain imports {done.stdout.strip()}"


def test_the_gallery_photo_loads_without_scipy():
    """Chelsea (Home's default image) read in a fresh process imports neither skimage.io nor SciPy."""
    code = (
        "import sys\n"
        "from methods.data.samples import load_sample\n"
        "assert load_sample('chelsea').shape == (300, 451, 3)\n"
        "print(','.join(m for m in ('scipy', 'skimage.io') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == ""


@pytest.mark.parametrize("loader", sorted(photos.PLAIN_PNG))
def test_a_photo_read_from_its_file_is_what_skimage_returns(loader):
    """The fast path reads the same pixels as the ``skimage.data`` function, for every loader it serves."""
    from skimage import data

    ours, theirs = photos.skimage_image(loader), getattr(data, loader)()
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)
