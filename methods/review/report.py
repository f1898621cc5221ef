"""Review reports: one self-contained HTML file, or a ZIP with the HTML plus every image and number.

Both are built from stored :class:`~methods.review.store.Snapshot` records alone: the pictures are
rendered again from the stored RAW maps with the stored normalization, colormap and alpha
(:mod:`methods.viz.normalize`, :mod:`methods.viz.render`), the same two stages the dashboard applies
after its cache.

* :func:`html_report` — one HTML string that opens offline: images are ``data:image/png;base64``
  URIs, plotly.js (4.8 MB) is embedded inline ONCE per document, however many snapshots have
  curves (none: not at all), no external script, stylesheet or image. The curves use the
  dashboard's colours and labels (:mod:`methods.review.report_curves`); the top-5 predictions
  are a table. Every piece of user text (titles, notes, comments,
  authors, class, model, method and layer names, view settings) goes through :func:`html.escape`.
* :func:`zip_report` — per snapshot a folder ``<id>/`` with ``original.png``, a heatmap and an
  overlay PNG per map at the image's full size, the raw maps as ``.npy``, ``settings.json``,
  ``metrics.json``, ``review.json`` (title, note, verdict, comments) and ``curves.csv`` when the
  metrics have curves; ``report.html`` at the top. Names inside the archive are sanitised
  (:func:`safe_name`): nothing a user typed can make a path leave its folder.

Curves come from ``metrics["curves"]`` (format: :mod:`methods.review.report_data`); pictures and curves
are computed by :mod:`methods.review.report_data`, this module only lays them out.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import plotly.io as pio

from methods.review.codec import encode_png, strict_json
from methods.review.csv_safe import safe_row
from methods.review.records import Comment, Snapshot
from methods.review.report_curves import curves_figure, method_labels
from methods.review.report_data import (
    CURVE_KINDS,
    RenderedMap,
    StoredCurve,
    curves_of,
    display_ranges,
    fit_image,
    image_label,
    rendered_maps,
)
from methods.viz.styles import curve_label

__all__ = [
    "HTML_MAX_SIDE",
    "RenderedMap",
    "StoredCurve",
    "rendered_maps",
    "display_ranges",
    "curves_of",
    "safe_name",
    "html_report",
    "zip_report",
]

HTML_MAX_SIDE = 512
"""Long side of the pictures inside the HTML (the ZIP keeps the image's full size)."""


# ----------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 2rem;color:#222}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
nav ol{columns:2} section.snapshot{border-top:2px solid #ddd;margin-top:2rem;padding-top:1rem}
.verdict{display:inline-block;padding:.1rem .6rem;border-radius:1rem;font-size:.9rem;background:#eee;margin-left:.5rem}
.verdict-looks-right{background:#d4edda}.verdict-spurious{background:#f8d7da}.verdict-needs-check{background:#fff3cd}
.verdict-wrong-class{background:#f5c6cb}.verdict-unreviewed{background:#e2e3e5}
.meta{color:#555}.note,.comment .text{white-space:pre-wrap;background:#f8f8f8;padding:.5rem .8rem;border-radius:4px}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3;font-weight:600}code{font-size:.85rem;word-break:break-all}
.maps{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0}figure img{display:block;max-width:100%;border:1px solid #ccc}
.pair{display:flex;gap:.3rem}figcaption{font-size:.85rem;color:#444;max-width:520px}
.comment{margin:.5rem 0}.comment .who{font-weight:600}
"""


def _e(value: Any) -> str:
    """HTML-escape anything as text (quotes too, so it is safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _img(image: np.ndarray, alt: str) -> str:
    return (
        f'<img src="{_png_uri(encode_png(image))}" alt="{_e(alt)}" width="{image.shape[1]}" height="{image.shape[0]}">'
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        head = ", ".join(_fmt(v) for v in value[:8])
        return f"[{head}{', …' if len(value) > 8 else ''}]" + (f" ({len(value)} values)" if len(value) > 8 else "")
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)[:300]
    return str(value)


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out.append((prefix, value))


def _rows(pairs: Sequence[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in pairs)


def _top5_table(top5: Any) -> str:
    """``metrics["top5"]`` ([[index, name, probability], ...]) as a table; "" if it is not that shape."""
    if not isinstance(top5, (list, tuple)) or not top5:
        return ""
    rows = []
    for rank, entry in enumerate(top5, 1):
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            return ""
        index, name, p = entry
        try:
            prob = f"{float(p) * 100:.1f}%"
        except (TypeError, ValueError):
            return ""
        rows.append(f"<tr><td>{rank}</td><td>{_e(name)}</td><td>{_e(index)}</td><td>{_e(prob)}</td></tr>")
    return (
        '<table class="top5"><tr><th>#</th><th>Class</th><th>Index</th><th>Probability</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _verdict_class(verdict: str) -> str:
    return "verdict-" + re.sub(r"[^a-z0-9]+", "-", verdict.lower()).strip("-")


def _settings(s: Snapshot) -> list[tuple[str, Any]]:
    n = s.normalization
    target = (
        "top-1" if s.target_index is None else f"{s.target_index}" + (f" — {s.target_name}" if s.target_name else "")
    )
    return [
        ("Model", s.model_id),
        ("Checkpoint SHA-256", s.model_sha256 or "—"),
        ("Page", s.page or "—"),
        ("Target class", target),
        ("Methods", ", ".join(s.methods) or "—"),
        ("Layers", ", ".join(s.layers) or "—"),
        (
            "Normalization",
            f"{n.mode}, relu={'on' if n.relu else 'off'}, scope={n.scope}"
            + (f", percentiles {n.percentiles[0]:g}–{n.percentiles[1]:g}" if n.mode == "percentile" else ""),
        ),
        ("Colormap / alpha", f"{s.colormap} / {s.alpha:g}"),
        ("Image", f"{image_label(s) or 'unnamed'} · {s.image_width}×{s.image_height} px, SHA-256 {s.image_sha256}"),
        ("Created (UTC)", s.created_at),
        ("Updated (UTC)", s.updated_at),
    ]


def _section(s: Snapshot, comments: Sequence[Comment], *, plotly_included: bool, max_side: int) -> tuple[str, bool]:
    image = s.image_array()
    parts = [
        f'<section class="snapshot" id="snap-{_e(s.id)}">',
        f'<h2>{_e(s.title) or "<i>Untitled</i>"}<span class="verdict {_verdict_class(s.verdict)}">{_e(s.verdict)}</span></h2>',
        f'<p class="meta">Snapshot <code>{_e(s.id)}</code> · by {_e(s.author)} · {_e(s.created_at)}</p>',
    ]
    if s.note:
        parts.append(f'<div class="note">{_e(s.note)}</div>')
    parts.append(f'<h3>Settings</h3><table class="settings">{_rows(_settings(s))}</table>')
    if s.view:
        parts.append(
            f'<details><summary>View settings</summary><table class="view">{_rows(sorted((str(k), v) for k, v in s.view.items()))}</table></details>'
        )
    parts.append('<h3>Maps</h3><div class="maps">')
    parts.append(
        f"<figure>{_img(fit_image(image, max_side), 'original image')}"
        f"<figcaption>original{_e(': ' + image_label(s) if image_label(s) else '')}</figcaption></figure>"
    )
    for r in rendered_maps(s, max_side=max_side, image=image):
        lo, hi = (float(r.raw.min()), float(r.raw.max())) if r.raw.size else (0.0, 0.0)
        caption = f"{r.method} · {r.layer} · raw {r.raw.shape[0]}×{r.raw.shape[1]}, values {lo:.3g}…{hi:.3g}"
        parts.append(
            f'<figure><div class="pair">{_img(r.heatmap, f"heatmap {r.method} {r.layer}")}'
            f"{_img(r.overlay, f'overlay {r.method} {r.layer}')}</div><figcaption>{_e(caption)}</figcaption></figure>"
        )
    parts.append("</div>")
    top5 = _top5_table(s.metrics.get("top5"))
    if top5:
        parts.append(f"<h3>Top-5 predictions</h3>{top5}")
    scalars: list[tuple[str, Any]] = []
    _flatten("", {k: v for k, v in s.metrics.items() if k != "curves" and not (k == "top5" and top5)}, scalars)
    if scalars and scalars != [("", {})]:
        parts.append(f'<h3>Metrics</h3><table class="metrics">{_rows(scalars)}</table>')
    curves = curves_of(s.metrics)
    if curves:
        div = pio.to_html(
            curves_figure(curves),
            full_html=False,
            include_plotlyjs=not plotly_included,  # the whole plotly.js, inline, once per document
            div_id=f"curves-{s.id}",
            config={"displaylogo": False, "responsive": True},
            default_height="360px",
        )
        parts.append(f'<h3>Deletion / insertion curves</h3><div class="curves">{div}</div>')
        aucs: dict[str, dict[str, float]] = {}
        for curve in curves:
            if curve.auc is not None:
                aucs.setdefault(curve.method, {})[curve.kind] = curve.auc
        if aucs:
            labels = method_labels(list(aucs))
            rows = "".join(
                f"<tr><th>{_e(curve_label(m, labels))}</th>"
                + "".join(f"<td>{_e(_fmt(k.get(kind, '—')))}</td>" for kind in CURVE_KINDS)
                + "</tr>"
                for m, k in aucs.items()
            )
            parts.append(f'<table class="aucs"><tr><th>AUC</th><th>deletion</th><th>insertion</th></tr>{rows}</table>')
        plotly_included = True
    parts.append(f"<h3>Comments ({len(comments)})</h3>")
    if not comments:
        parts.append('<p class="meta">No comments.</p>')
    for c in comments:
        parts.append(
            f'<div class="comment"><span class="who">{_e(c.author)}</span> <span class="meta">{_e(c.created_at)}</span>'
            f'<div class="text">{_e(c.text)}</div></div>'
        )
    parts.append("</section>")
    return "\n".join(parts), plotly_included


def html_report(
    snapshots: Sequence[Snapshot],
    *,
    comments: Mapping[str, Sequence[Comment]] | None = None,
    title: str = "GradLens review report",
    max_side: int = HTML_MAX_SIDE,
) -> str:
    """One self-contained HTML document for ``snapshots`` (opens offline; see the module docstring).

    Args:
        snapshots: as returned by :meth:`SnapshotStore.get`, in the order to show.
        comments: snapshot id -> its comments (:meth:`SnapshotStore.comments`); missing = none.
        title: the document's title (escaped).
        max_side: long side of the embedded pictures, in pixels.

    Returns:
        The HTML text (UTF-8). Its size is dominated by plotly.js (~4.8 MB) when any snapshot has
        curves, else by the PNGs.
    """
    comments = comments or {}
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    unique = list({s.id: s for s in reversed(snapshots)}.values())[::-1]  # first occurrence wins
    body: list[str] = []
    plotly_included = False
    for s in unique:
        section, plotly_included = _section(
            s, comments.get(s.id, ()), plotly_included=plotly_included, max_side=max_side
        )
        body.append(section)
    toc = "".join(
        f'<li><a href="#snap-{_e(s.id)}">{_e(s.title) or "Untitled"}</a> '
        f'<span class="verdict {_verdict_class(s.verdict)}">{_e(s.verdict)}</span></li>'
        for s in unique
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header><h1>{_e(title)}</h1><p class="sub">{len(unique)} snapshot{"s" if len(unique) != 1 else ""} · '
        f"generated {_e(generated)} by GradLens</p></header>\n"
        + (f"<nav><ol>{toc}</ol></nav>\n" if unique else "<p>No snapshots.</p>\n")
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# ----------------------------------------------------------------------------- ZIP

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def safe_name(text: str, *, max_len: int = 80) -> str:
    """A file-name component from any text: ``[A-Za-z0-9._-]`` only, no leading dot, never empty.

    ``"../../etc/passwd"`` -> ``"etc_passwd"``; ``"layer4.1.conv2"`` is kept as it is.
    """
    name = _UNSAFE.sub("_", str(text))
    name = re.sub(r"\.{2,}", "_", name).strip("._-")[:max_len].strip("._-")
    return name or "unnamed"


def _zip_time(created_at: str) -> tuple[int, int, int, int, int, int]:
    try:
        t = datetime.fromisoformat(created_at)
    except (TypeError, ValueError):
        return (1980, 1, 1, 0, 0, 0)
    return (t.year, t.month, t.day, t.hour, t.minute, t.second) if t.year >= 1980 else (1980, 1, 1, 0, 0, 0)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(strict_json(value), indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _curves_csv(curves: Sequence[StoredCurve]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", "kind", "fraction", "score"])
    for c in curves:
        for f, sc in zip(c.fractions, c.scores):
            writer.writerow(safe_row([c.method, c.kind, f, sc]))  # floats are written as repr()
    return buf.getvalue().encode("utf-8")


def zip_report(
    snapshots: Sequence[Snapshot],
    *,
    comments: Mapping[str, Sequence[Comment]] | None = None,
) -> bytes:
    """A ZIP archive: ``report.html`` plus one folder per snapshot (layout in the module docstring).

    Heatmap and overlay PNGs are at the image's full size; raw maps are ``.npy`` (float32, loadable
    with ``allow_pickle=False``). ``settings.json`` lists every map with its file names, since file
    names are sanitised and may differ from method and layer names.
    """
    comments = comments or {}
    unique = list({s.id: s for s in reversed(snapshots)}.values())[::-1]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:

        def put(name: str, data: bytes, when: tuple[int, int, int, int, int, int], *, stored: bool = False) -> None:
            info = zipfile.ZipInfo(name, date_time=when)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)

        now = _zip_time(datetime.now(timezone.utc).isoformat())
        put("report.html", html_report(unique, comments=comments).encode("utf-8"), now)
        folders: set[str] = set()
        for s in unique:
            folder = s.id if _ID.fullmatch(s.id) else safe_name(s.id)  # store ids are already safe
            while folder in folders:
                folder += "_"
            folders.add(folder)
            when = _zip_time(s.created_at)
            put(f"{folder}/original.png", s.image_png, when, stored=True)
            stems: set[str] = set()
            index = []
            for r in rendered_maps(s):
                stem = f"{safe_name(r.method, max_len=60)}__{safe_name(r.layer, max_len=60)}"
                base, k = stem, 2
                while stem in stems:
                    stem, k = f"{base}-{k}", k + 1
                stems.add(stem)
                files = {"raw": f"{stem}.npy", "heatmap": f"{stem}_heatmap.png", "overlay": f"{stem}_overlay.png"}
                put(f"{folder}/{files['raw']}", _npy(r.raw), when)
                put(f"{folder}/{files['heatmap']}", encode_png(r.heatmap), when, stored=True)
                put(f"{folder}/{files['overlay']}", encode_png(r.overlay), when, stored=True)
                index.append(
                    {
                        "method": r.method,
                        "layer": r.layer,
                        "shape": list(r.raw.shape),
                        "value_range": list(r.value_range),
                        "files": files,
                    }
                )
            n = s.normalization
            settings = {
                "id": s.id,
                "model_id": s.model_id,
                "model_sha256": s.model_sha256,
                "page": s.page,
                "target_index": s.target_index,
                "target_name": s.target_name,
                "methods": list(s.methods),
                "layers": list(s.layers),
                "normalization": {"mode": n.mode, "relu": n.relu, "scope": n.scope, "percentiles": list(n.percentiles)},
                "colormap": s.colormap,
                "alpha": s.alpha,
                "view": s.view,
                "image": {
                    "name": image_label(s),
                    "file": "original.png",
                    "width": s.image_width,
                    "height": s.image_height,
                    "sha256": s.image_sha256,
                },
                "maps": index,
            }
            put(f"{folder}/settings.json", _json_bytes(settings), when)
            put(f"{folder}/metrics.json", _json_bytes(s.metrics), when)
            review = {
                "id": s.id,
                "title": s.title,
                "author": s.author,
                "note": s.note,
                "verdict": s.verdict,
                "created_at": s.created_at,
                "updated_at": s.updated_at,
                "comments": [
                    {"author": c.author, "text": c.text, "created_at": c.created_at} for c in comments.get(s.id, ())
                ],
            }
            put(f"{folder}/review.json", _json_bytes(review), when)
            curves = curves_of(s.metrics)
            if curves:
                put(f"{folder}/curves.csv", _curves_csv(curves), when)
    return buf.getvalue()
