"""THE one place where exceptions and echoed text become messages on the page.

* :class:`methods.errors.GradLensError` (what the library raises on purpose) -> ``st.error`` with
  the library's own message (``Cancelled`` -> ``st.info``: the user asked for it).
* ANY other exception is a bug: a short "Something went wrong while …" message with an error id,
  and an error line with that id and the traceback in the server log. The viewer never sees the
  traceback (it shows server paths and code). Never ``except ValueError``: a real bug must not pass
  for a validation message.
* Streamlit's own control flow (``st.rerun``, ``st.stop``, ``st.switch_page``) derives from
  ``BaseException`` and passes through untouched.
* Text that did not come from this code (a URL, an upload's name, a stored snapshot, a library
  message quoting any of those) reaches markdown only through :func:`md_escape`; :func:`notice`
  draws a whole message that way. Streamlit renders alerts, captions and headers as markdown, so
  ``?model=[Click](http://…)`` would otherwise be a live link and ``![t](http://…)`` a remote image.

Inside a widget callback nothing can be drawn where the widget is, so ``defer_to=name`` keeps the
message and :func:`show_deferred_errors` draws it where the script reaches the widget.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st

from methods.errors import Cancelled, GradLensError

__all__ = [
    "GradLensError",
    "Outcome",
    "error_message",
    "md_escape",
    "notice",
    "shown_errors",
    "show_deferred_errors",
    "log",
]

log = logging.getLogger("dashboard")
if not log.handlers:  # the server's log: Streamlit sets up only its own loggers
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)
_DEFERRED_KEY = "_deferred_errors"

#: Every character CommonMark lets a backslash escape, and Streamlit's own directives use
#: (``:red[…]``, ``:material/x:``, ``$…$``): escaped, each is shown as itself.
_MD_SPECIAL = frozenset("\\`*_{}[]<>()#+-.!|~$:")


_ZWJ = "\u200d"  # zero-width joiner: invisible, neither a space nor punctuation
_AUTOLINKS = re.compile(r"(?i)(https?|www(?=\.)|@)")


def md_escape(text: object) -> str:
    """Text that markdown shows literally: every markdown-special character backslash-escaped,
    line breaks kept as spaces (a message is one paragraph; a newline could start a heading).

    GFM also turns bare ``http://…``, ``www.…`` and ``name@host`` into links AFTER the escapes
    are read, so an invisible zero-width joiner goes after ``http``, ``www`` and ``@``: the text
    reads the same and no longer makes a link.
    """
    out = []
    for ch in _AUTOLINKS.sub(lambda m: m.group(0) + _ZWJ, str(text)):
        if ch in _MD_SPECIAL:
            out.append("\\" + ch)
        elif ch in "\r\n\t\v\f":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def notice(text: str, kind: str = "warning", container=None, icon: str | None = None) -> None:
    """Draw a plain-text message (escaped whole) as ``st.warning`` / ``st.info`` / ``st.error``."""
    where = container or st
    draw = {"warning": where.warning, "info": where.info, "error": where.error, "success": where.success}[kind]
    draw(md_escape(text), icon=icon)


def error_message(exc: BaseException) -> str:
    """The library's own message, first letter capitalised."""
    text = str(exc).strip().strip('"') or type(exc).__name__
    return text[0].upper() + text[1:]


class Outcome:
    """What :func:`shown_errors` saw: ``failed`` is True when it showed a message."""

    failed = False


@dataclass(frozen=True)
class _Message:
    text: str
    kind: str = "error"  # "error" | "info"


def _draw(message: _Message, container=None) -> None:
    where = container or st
    if message.kind == "info":
        notice(message.text, "info", where, icon=":material/block:")
        return
    notice(message.text, "error", where, icon=":material/error:")


def error_id() -> str:
    """A short random id that ties a message a viewer sees to its server log line."""
    return secrets.token_hex(4)


def _message(exc: Exception, where: str | None, instead: str | None, doing: str) -> _Message:
    """A library error is its own message; anything else (a bug) is a short message with an error
    id, and its traceback goes to the server log under that id — never to the viewer (a traceback
    shows server paths and code)."""
    prefix = f"{where}: " if where else ""
    if isinstance(exc, Cancelled):
        return _Message(instead or prefix + error_message(exc), kind="info")
    if isinstance(exc, GradLensError):
        return _Message(instead or prefix + error_message(exc))
    ident = error_id()
    log.error("unexpected error %s while %s", ident, doing, exc_info=exc)
    return _Message(
        instead
        or f"{prefix}Something went wrong while {doing}. This is a bug in GradLens, not in your "
        f"input. Error id {ident}: the server log has the details under it."
    )


@contextmanager
def shown_errors(
    where: str | None = None,
    container=None,
    *,
    instead: str | None = None,
    defer_to: str | None = None,
    doing: str = "drawing this part of the page",
) -> Iterator[Outcome]:
    """Turn an exception in the block into a message; the rest of the block is skipped and the
    script goes on after it (``as outcome``: ``outcome.failed`` tells).

    Args:
        where: a prefix naming what failed ("photo.png").
        container: where to draw (default: the main area).
        instead: a short text to show in place of the message (when it is shown elsewhere already).
        defer_to: inside a widget callback: keep the message under this name; the script shows
            it with :func:`show_deferred_errors` where the widget is.
        doing: what the block was doing, for the message of an unexpected error
            ("Something went wrong while loading the checkpoint").
    """
    outcome = Outcome()
    try:
        yield outcome
    except Exception as exc:  # noqa: BLE001 -- library errors and bugs alike become messages, told apart in _message
        outcome.failed = True
        message = _message(exc, where, instead, doing)
        if defer_to is not None:
            st.session_state.setdefault(_DEFERRED_KEY, {})[defer_to] = message
        else:
            _draw(message, container)


def show_deferred_errors(name: str, container=None) -> None:
    """Show (once) the message a widget callback kept under ``name``."""
    message = st.session_state.get(_DEFERRED_KEY, {}).pop(name, None)
    if message is not None:
        _draw(message, container)
