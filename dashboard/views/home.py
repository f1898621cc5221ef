"""GradLens home: the notebook's view of one image, and the methods the library knows.

Run from the repository root: ``streamlit run dashboard/Home.py``. The tables are plain rows and
columns, not pandas DataFrames: the first page of a cold server imports no pandas or pyarrow
before its map is drawn (tests/dashboard/test_cold_start.py).
"""

from functools import partial

import streamlit as st

import methods
from dashboard.app import jobs, model_fit, widgets
from dashboard.app.errors import md_escape
from dashboard.core import services
from dashboard.core.state import ViewState
from dashboard.draw import pictures
from methods.viz.ranges import display_range

HOW_TO_READ = """
* **Grayscale map**: where the class score is most sensitive to the layer's features; white = high.
  It is computed at the layer's resolution (here the default layer) and resized to the image.
* **Heatmap / overlay**: the same map through a colormap, then blended with the image
  (opacity *alpha* in the sidebar).
* The map explains **one class** (sidebar: *Target class*). Pick another class to see what in the
  image speaks for it; a map for a wrong class that looks like the right one is a warning sign.
* A map is not proof: compare methods (page *Methods*), layers (*Layers*) and check that removing
  the highlighted pixels really lowers the score (*Faithfulness*).
* Colours depend on the **normalization** (sidebar): min-max stretches every map to full contrast,
  even a weak one; the page *Normalization* shows every choice side by side.
"""


def method_table() -> list[dict[str, str]]:
    """The registry as table rows: label, family, cost, paper, summary (never a hard-coded list)."""
    rows = [
        {
            "Method": s.label,
            "Key": s.name,
            "Family": s.family,
            "Cost": s.cost,
            "Slow": "yes" if s.is_slow else "",
            "Paper": s.paper,
            "Summary": s.summary,
        }
        for s in methods.list_methods()
    ]
    return rows


def _original_caption(bundle) -> str:
    """What the first panel is: the picture at its own size, and which part the model saw."""
    place = bundle.place
    if place is None or place.mode == "squash":  # the whole picture, resized: what the model sees
        return "Original (as the model sees it)"
    h, w = place.image_size
    if place.mode == "crop" and place.seen_share < 0.999:
        return (
            f"Original {w}×{h}; the model saw the centre {place.seen_share:.0%} (its evaluation crop): "
            "the dimmed border is not explained"
        )
    if place.mode == "letterbox":
        return f"Original {w}×{h}, letterboxed into the model's input (padding not shown)"
    return f"Original {w}×{h}; the model saw all of it"


def show(state: ViewState) -> None:
    """Draw the home page from a view state."""
    st.caption("Grad-CAM-style class activation maps: which pixels made the network say what it said.")

    bundle = jobs.raw_maps(state, ["gradcam"], [None])
    layer = next(iter(bundle.maps["gradcam"]))
    raw = bundle.maps["gradcam"][layer]
    widgets.note_constant({f"Grad-CAM at {layer}": raw})
    widgets.map_notes(bundle, ["gradcam"], services.method_label)
    norm = services.normalized([raw], state)[0]
    value_range = display_range(norm, mode=state.norm, relu=state.relu)
    views = methods.render_views(
        bundle.picture,
        norm,
        colormap=state.draw_cmap,
        alpha=state.alpha,
        value_range=value_range,
        placement=bundle.place,
    )
    target_name = bundle.target_name
    scale = pictures.ColourScale(
        state.draw_cmap, value_range, pictures.scale_text(state.norm, state.relu, None, (state.p_lo, state.p_hi))
    )

    st.subheader(f"Grad-CAM for “{md_escape(target_name)}” at layer {md_escape(layer)}")
    panels = [views.original, views.grayscale, views.heatmap, views.overlay]
    captions = [
        _original_caption(bundle),
        "Grayscale map (black = low, white = high)",
        f"Heatmap ({state.draw_cmap})",
        f"Overlay (alpha {state.alpha:.2f})",
    ]
    cols = st.columns(4)
    for col, pic, cap in zip(cols, panels, captions):
        col.image(pictures.enlarge(pic), caption=cap, width="stretch")
    _, bar = st.columns([2, 2])
    bar.image(
        pictures.colorbar(scale, 480), caption=f"Heatmap and overlay colours: {scale.range_text}", width="stretch"
    )
    st.caption(
        f"Raw map {raw.shape[0]}×{raw.shape[1]} at {md_escape(layer)}, values {float(raw.min()):.3g} … "
        f"{float(raw.max()):.3g}; shown with {state.norm} normalization{' after ReLU' if state.relu else ''}. "
        f"Computed in {bundle.seconds.get('gradcam', 0.0) * 1000:.0f} ms."
    )
    notes = pictures.notes_text({"Grad-CAM": bundle.notes.get("gradcam", ())})
    grid = partial(
        pictures.compose_grid,
        panels,
        captions,
        ncols=4,
        cell=256,
        scale=scale,
        title=f"Grad-CAM · {state.model} · {state.image} · class {target_name} · {layer}",
        note=f"raw map values {float(raw.min()):.4g} … {float(raw.max()):.4g}" + (f"\n{notes}" if notes else ""),
    )
    widgets.download_png(
        "The four views as PNG",
        grid,
        "gradlens_home.png",
        key="dl_home",
        info=pictures.with_notes(scale.png_info(), notes),
    )

    left, right = st.columns([1, 2], gap="large")
    with left:
        st.subheader("Prediction")
        order = bundle.probs.argsort()[::-1][:5]
        top = {
            "Class": [bundle.class_names[i] if i < len(bundle.class_names) else str(i) for i in order],
            "Probability": [float(bundle.probs[i]) for i in order],
        }
        st.dataframe(
            top,
            hide_index=True,
            width="stretch",
            column_config={
                "Probability": st.column_config.ProgressColumn(
                    "Probability", format="percent", min_value=0.0, max_value=1.0
                )
            },
        )
        widgets.download_csv("Top-5 as CSV", top, "gradlens_top5.csv", key="dl_top5")
        model_fit.domain_warning(state)  # a photo on a scenes model, a scene on an ImageNet model
    with right:
        st.subheader("How to read this")
        st.markdown(HOW_TO_READ)

    st.subheader("Methods in the library")
    table = method_table()
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=35 * (len(table) + 1) + 3,  # every row, no scrolling
        column_config={
            "Paper": st.column_config.LinkColumn("Paper", display_text="paper"),
            "Summary": st.column_config.TextColumn("Summary", width="large"),
        },
    )
    widgets.download_csv("Method table as CSV", table, "gradlens_methods.csv", key="dl_methods")
