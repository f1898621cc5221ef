"""URL parameters of the Compare and Sanity pages, and the pieces every parameter parser shares.

Pure: no streamlit, no library import. :mod:`dashboard.core.state` holds the view state and its
round trip; the parsers of the two model-checking pages live here so that ``state.py`` stays one
readable module. Each parser takes the raw text and a ``Choices`` (duck-typed: it reads
``models``, ``metrics``, ``modes``; None = do not check) and returns the value or raises
:class:`InvalidParam` with a short reason::

    models    Compare: comma-separated model ids compared with ``model`` (1 or 2; an uploaded
              checkpoint's ``upload:<digest>`` too); absent = the page's default partner
    depths    Compare: number of matched depths (rows), 2..8; 4 = 25 %, 50 %, 75 %, last
    metric    Compare: the agreement number of the layer x layer heatmap
              (``methods.metrics.agreement.maps.METRICS``)
    mode      Sanity: cascading | independent (``methods.metrics.sanity.check.MODES``)
    seed      Sanity: seed of the re-initialisations, >= 0
    classes   Sanity: how many top classes the class-sensitivity check compares, 2..10
    box       Detection: the explained detection, by rank in the model's output (0 = the highest score)
    region    Detection (segmentation models): the explained class's region, mask | box
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "UPLOAD_PREFIX",
    "InvalidParam",
    "is_upload",
    "PARTNERS_MAX",
    "DEPTHS_RANGE",
    "CLASSES_RANGE",
    "BOX_MAX",
    "REGIONS",
    "PAGE_PARSERS",
    "parse_int",
    "parse_choice",
    "parse_models",
]

UPLOAD_PREFIX = "upload:"
#: Compare: how many models may stand beside the sidebar's model.
PARTNERS_MAX = 2
#: Compare: the number of matched depths; Sanity: the number of classes of the class check.
DEPTHS_RANGE: tuple[int, int] = (2, 8)
CLASSES_RANGE: tuple[int, int] = (2, 10)
#: Detection: the most detections a view may name (torchvision keeps 100 per image by default).
BOX_MAX = 299
#: Detection, segmentation models: the region of the class that is explained.
REGIONS: tuple[str, ...] = ("mask", "box")


class InvalidParam(Exception):
    """A URL parameter (or a stored view's field) has a bad value; the message says why.

    Its own class, not ``ValueError``: ``from_query`` catches exactly this, so a bug in a parser
    is never mistaken for a bad link.
    """


def is_upload(value: str | None) -> bool:
    """True for ids of uploaded files (``"upload:<digest>"``), which cannot travel in a URL.

    Examples:
        >>> is_upload("upload:3f2a"), is_upload("scenes_vgg"), is_upload(None)
        (True, False, False)
    """
    return isinstance(value, str) and value.startswith(UPLOAD_PREFIX)


def parse_int(value: str, lo: int, hi: int, what: str) -> int:
    """A whole number in ``[lo, hi]``.

    Examples:
        >>> parse_int("4", 2, 8, "depths")
        4
        >>> parse_int("9", 2, 8, "depths")
        Traceback (most recent call last):
        ...
        dashboard.core.params.InvalidParam: depths must be in [2, 8]
    """
    try:
        number = int(value)
    except ValueError:  # int() of this one string, nothing else
        raise InvalidParam(f"{what} must be a whole number") from None
    if not lo <= number <= hi:
        raise InvalidParam(f"{what} must be in [{lo}, {hi}]")
    return number


def parse_choice(value: str, valid: Iterable[str] | None, what: str) -> str:
    """One name of ``valid`` (None: any non-empty name)."""
    if not value:
        raise InvalidParam(f"empty {what}")
    if valid is not None and value not in valid:
        raise InvalidParam(f"not a known {what} (valid: {', '.join(valid)})")
    return value


def parse_models(value: str, valid: Iterable[str] | None) -> tuple[str, ...]:
    """0..:data:`PARTNERS_MAX` model ids, each a catalog name of ``valid`` or an upload id (whether
    the session has the upload is checked by the page), no duplicates; none = the page's default
    partner (what a stored view of the default writes).

    Examples:
        >>> parse_models("scenes_resnet,upload:ab12", ("scenes_vgg", "scenes_resnet"))
        ('scenes_resnet', 'upload:ab12')
    """
    items = [v.strip() for v in value.split(",") if v.strip()]
    if len(items) > PARTNERS_MAX:
        raise InvalidParam(
            f"{len(items)} models given; the Compare page sets at most {PARTNERS_MAX} beside the sidebar's model"
        )
    if len(set(items)) != len(items):
        raise InvalidParam("a model is listed twice")
    for item in items:
        if is_upload(item):
            if len(item) <= len(UPLOAD_PREFIX):
                raise InvalidParam("empty upload id for a model")
        else:
            parse_choice(item, valid, "model")
    return tuple(items)


#: field -> parser ``(raw text, choices) -> value`` for the Compare and Sanity fields of ViewState.
PAGE_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "models": lambda v, c: parse_models(v, c.models),
    "depths": lambda v, c: parse_int(v, DEPTHS_RANGE[0], DEPTHS_RANGE[1], "depths"),
    "metric": lambda v, c: parse_choice(v, c.metrics, "agreement metric"),
    "mode": lambda v, c: parse_choice(v, c.modes, "randomization mode"),
    "seed": lambda v, c: parse_int(v, 0, 2**31 - 1, "seed"),
    "classes": lambda v, c: parse_int(v, CLASSES_RANGE[0], CLASSES_RANGE[1], "classes"),
    "layer_page": lambda v, c: parse_int(v, 1, 999, "layer page"),
    "box": lambda v, c: parse_int(v, 0, BOX_MAX, "box"),
    "region": lambda v, c: parse_choice(v, REGIONS, "region"),
}
