"""THE one place where text that did not come from this code becomes Plotly text.

Plotly draws titles, axis titles, tick labels, legend names, hover labels and annotations through
its own small HTML reader: ``<br>``, ``<b>``, ``<i>``, ``<em>``, ``<sup>``, ``<sub>``,
``<span style>`` and ``<a href>`` become markup, ``&…;`` entities become characters, a hover
template substitutes ``%{…}``, and text between ``$…$`` is handed to MathJax where a page loads it.
A checkpoint's class name, a snapshot's layer or an uploaded table's method name reaches a figure
only through :func:`plotly_text`, which shows it literally.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["plotly_text", "plotly_texts"]

#: ``&`` first in meaning: an escaped ``<`` must not read as the user's own ``&lt;``. Plotly
#: decodes ``&lt;`` ``&gt;`` ``&amp;`` and numeric entities when it draws, never as a tag.
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "$": "&#36;"}


def plotly_text(text: object) -> str:
    """``text`` as Plotly shows it literally: ``&``, ``<`` and ``>`` HTML-escaped (no tag, no link,
    no entity of the user's own), ``$`` and the ``%`` of ``%{`` as numeric entities (no MathJax, no
    ``%{…}`` substitution in a hover template; "10 %" stays as it is), line breaks as spaces.

    Examples:
        >>> plotly_text('<a href="http://x">m</a>')
        '&lt;a href="http://x"&gt;m&lt;/a&gt;'
        >>> plotly_text("%{customdata[0]} & $x$ at 10 %")
        '&#37;{customdata[0]} &amp; &#36;x&#36; at 10 %'
    """
    out = []
    text = str(text)
    for i, ch in enumerate(text):
        if ch == "%" and text[i + 1 : i + 2] == "{":
            out.append("&#37;")
        elif ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch in "\r\n\t\v\f":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def plotly_texts(texts: Iterable[object]) -> list[str]:
    """:func:`plotly_text` of each (tick labels, customdata columns)."""
    return [plotly_text(t) for t in texts]
