"""THE page table: one row per dashboard page, read by everything that lists pages.

Pure: no streamlit import. Navigation (titles, the sidebar's page list, links), the view state
(the ``page`` values a link may name), the one page shell (:func:`dashboard.app.shell.run_page`),
the Review page's redraw of a saved view and the tests all read :data:`PAGES` — nothing else
keeps a list of pages.

A row names its view module by its import path (a string, so this pure table imports no view):
the module defines ``show(state)`` (and optionally ``controls(state) -> state``); a page whose
``fields`` are empty draws no view state and defines ``show()``. Adding a page is one view module
plus one row here (and the two-line script in ``dashboard/pages/`` that Streamlit's page
discovery needs; see docs/dashboard.md, "How to add a page").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

__all__ = ["Page", "PAGES", "SIDEBAR_FIELDS", "VIEW_PAGES", "page", "page_for_task"]

#: The view-state fields the sidebar sets: every page that draws a view reads them.
SIDEBAR_FIELDS: tuple[str, ...] = (
    "model",
    "image",
    "target",
    "norm",
    "relu",
    "scope",
    "p_lo",
    "p_hi",
    "cmap",
    "alpha",
    "device",
)
_METHOD_OPTIONS = ("options", "slow")  # pages that run methods: their options, slow methods on a click


@dataclass(frozen=True)
class Page:
    """One dashboard page.

    Attributes:
        key: the ``page`` value of a view state (lower_snake).
        title: the page's title (and the browser tab's, with " · GradLens").
        script: the Streamlit script, relative to ``dashboard/`` (its file name names the URL).
        view: import path of the module whose ``show`` (and ``controls``) draw the page.
        fields: the :class:`~dashboard.core.state.ViewState` fields the page reads; empty = it draws
            no view (no sidebar; its links carry no view; ``show()`` takes no state).
        tasks: the model tasks (``LoadedModel.task``) the page explains; a model of another task
            gets a notice and a link to the page that fits (:func:`page_for_task`).
    """

    key: str
    title: str
    script: str
    view: str
    fields: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ("classification",)

    @property
    def label(self) -> str:
        """The page list's label: "Home", else the script's name without its number."""
        return "Home" if self.script == "Home.py" else PurePosixPath(self.script).stem.split("_", 1)[-1]

    @property
    def draws_view(self) -> bool:
        return bool(self.fields)


#: Every page, in the order of the sidebar's page list.
PAGES: tuple[Page, ...] = (
    Page("home", "GradLens", "Home.py", "dashboard.views.home", SIDEBAR_FIELDS),
    Page(
        "methods",
        "Methods side by side",
        "pages/1_Methods.py",
        "dashboard.views.methods",
        SIDEBAR_FIELDS + ("methods", "layer") + _METHOD_OPTIONS,
    ),
    Page(
        "layers",
        "Layers",
        "pages/2_Layers.py",
        "dashboard.views.layers",
        SIDEBAR_FIELDS + ("method", "layer", "layers", "layer_set", "layer_page") + _METHOD_OPTIONS,
    ),
    Page(
        "normalization",
        "Normalization",
        "pages/3_Normalization.py",
        "dashboard.views.normalization",
        SIDEBAR_FIELDS + ("method", "layer") + _METHOD_OPTIONS,
    ),
    Page(
        "faithfulness",
        "Faithfulness",
        "pages/4_Faithfulness.py",
        "dashboard.views.faithfulness",
        SIDEBAR_FIELDS + ("methods", "layer", "baseline", "steps", "step") + _METHOD_OPTIONS,
    ),
    Page(
        "compare",
        "Compare models",
        "pages/6_Compare.py",
        "dashboard.views.compare.view",
        SIDEBAR_FIELDS + ("method", "models", "depths", "metric") + _METHOD_OPTIONS,
    ),
    Page(
        "sanity",
        "Sanity checks",
        "pages/7_Sanity.py",
        "dashboard.views.sanity",
        SIDEBAR_FIELDS + ("methods", "layer", "mode", "seed", "classes") + _METHOD_OPTIONS,
    ),
    Page(
        "detection",
        "Detection and segmentation",
        "pages/9_Detection.py",
        "dashboard.views.detection.view",
        SIDEBAR_FIELDS + ("methods", "method", "layer", "box", "region", "steps") + _METHOD_OPTIONS,
        tasks=("detection", "segmentation"),
    ),
    Page("review", "Review", "pages/5_Review.py", "dashboard.views.review"),
    Page("benchmark", "Benchmark", "pages/8_Benchmark.py", "dashboard.views.benchmark.view"),
    Page("advisor", "Advisor", "pages/10_Advisor.py", "dashboard.views.advisor.view"),
)
_BY_KEY = {p.key: p for p in PAGES}
assert len(_BY_KEY) == len(PAGES), "page keys must be unique"

#: The keys of the pages that draw a view: the ``page`` values a view state (and a link) may name.
VIEW_PAGES: tuple[str, ...] = tuple(p.key for p in PAGES if p.draws_view)


def page(key: str) -> Page:
    """The row of page ``key``; ValueError naming the valid keys."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise ValueError(f"page={key!r} is not one of {list(_BY_KEY)}") from None


def page_for_task(task: str) -> Page:
    """The page that explains models of ``task``: the first view page other than Home that does
    (``"detection"`` -> the Detection page, ``"classification"`` -> Methods)."""
    return next(p for p in PAGES if p.draws_view and task in p.tasks and p.key != "home")
