"""Faithfulness: deletion and insertion curves of the chosen methods against random and centre maps."""

from dataclasses import replace
from functools import partial

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

import methods
from dashboard.app import cache, jobs, navigation, widgets
from dashboard.app.errors import md_escape, notice
from dashboard.core import faithfulness, pages, services
from dashboard.core.state import STEPS_RANGE, ViewState
from dashboard.draw import figures, pictures
from methods.viz.styles import REFERENCE_KEYS, REFERENCE_LABELS

BASELINE_LABELS = {
    "blur": "blur (a blurred copy; the library's default)",
    "zero": "zero (the dataset-mean colour)",
    "mean": "mean (this image's mean colour)",
    "rise": "RISE: deletion to zero, insertion from blur",
}


def controls(state: ViewState) -> ViewState:
    specs = methods.list_methods()
    names = [s.name for s in specs]
    labels = {s.name: s.label + (" (slow)" if s.is_slow else "") for s in specs}
    widgets.seed("w_methods", [m for m in state.methods if m in names] or names[:1])
    top = st.columns([3, 2], vertical_alignment="bottom")
    chosen = top[0].multiselect(
        "Methods",
        names,
        key="w_methods",
        format_func=labels.get,
        help="The library's random and centre reference maps are always drawn too.",
    )
    layer = widgets.layer_select(state, top[1])
    row = st.columns([2, 2, 1.2], vertical_alignment="bottom")
    options = list(faithfulness.baselines())
    widgets.seed("w_baseline", state.baseline if state.baseline in options else options[0])
    baseline = row[0].selectbox(
        "Baseline",
        options,
        key="w_baseline",
        format_func=lambda b: BASELINE_LABELS.get(b, b),
        help="What a removed pixel becomes (deletion), and the picture insertion starts from.",
    )
    widgets.seed("w_steps", int(state.steps))
    steps = row[1].slider(
        "Steps",
        STEPS_RANGE[0],
        STEPS_RANGE[1],
        step=5,
        key="w_steps",
        help="Pixels are removed / put back in this many equal chunks.",
    )
    widgets.seed("w_slow", state.slow)
    slow = row[2].toggle(
        "Run without asking", key="w_slow", help="Otherwise the curves (and slow methods) wait for their Run button."
    )
    return replace(
        state,
        methods=tuple(chosen) or state.methods,
        layer=layer,
        baseline=baseline,
        steps=int(steps),
        step=min(state.step, int(steps)),
        slow=slow,
    )


def show(state: ViewState) -> None:
    """Draw the Faithfulness page from a view state."""
    bundle = jobs.gated_maps(state, list(state.methods), [state.layer], key="faith")
    if bundle is None:
        return
    names = [n for n in state.methods if n in bundle.maps]
    layer = next(iter(bundle.maps[names[0]]))
    shape = bundle.maps[names[0]][layer].shape
    per_map = 2 * (state.steps + 1)
    job = ("curves", state.model, state.image, state.target, layer, state.baseline, state.steps, tuple(names))
    if not jobs.wait_for_click(
        job,
        f":material/hourglass_top: Each curve pair costs {per_map} forward passes, batched by 32: "
        f"{len(names)} map(s) + 2 references = {per_map * (len(names) + 2)} images through the model.",
        "Run the curves",
        key="faith_run",
        auto=state.slow,
    ):
        return
    curves = {n: jobs.faithfulness_curves(state, bundle, n, layer, job=job) for n in names}
    curves.update(jobs.reference_curves(state, bundle, shape, job=job))
    jobs.mark_ran(job)
    keys = list(curves)
    labels = {**{n: services.method_label(n) for n in names}, **REFERENCE_LABELS}
    fractions = curves[keys[0]]["deletion"]["fractions"]
    step = min(state.step, len(fractions) - 1)

    widgets.map_notes(bundle, names, services.method_label)
    precisions = sorted({str(c.get("precision", "fp32")) for k in keys for c in curves[k].values()})
    st.caption(
        f"Class **{md_escape(bundle.target_name)}** · layer {md_escape(layer)} ({shape[0]}×{shape[1]}) · baseline "
        f"**{BASELINE_LABELS.get(state.baseline, state.baseline)}** · {state.steps} steps · curves in "
        f"{' and '.join(precisions)}. Grey dashed: the random and centre maps on the same grid, the chance "
        "level a method must beat."
    )
    if precisions != ["fp32"]:
        notice(
            f'The curves were computed in {" and ".join(precisions)} (bfloat16 autocast: precision "auto" on '
            "this machine). An AUC can differ from fp32 by up to 0.03 on EfficientNet-Lite0 (docs/precision.md), "
            "more than two methods may differ by on one image. Set GRADLENS_PRECISION=fp32 on the server for fp32.",
            "info",
            icon=":material/memory:",
        )
    fig = figures.curves_figure(
        {k: (curves[k]["deletion"]["fractions"], curves[k]["deletion"]["scores"]) for k in keys},
        {k: (curves[k]["insertion"]["fractions"], curves[k]["insertion"]["scores"]) for k in keys},
        labels=labels,
        references=REFERENCE_KEYS,
        marker=float(fractions[step]),
    )
    st.plotly_chart(fig, width="stretch", key="faith_fig")
    auc = pd.DataFrame(
        {
            "Map": [labels[k] for k in keys],
            "Deletion AUC (lower is better)": [curves[k]["deletion"]["auc"] for k in keys],
            "Insertion AUC (higher is better)": [curves[k]["insertion"]["auc"] for k in keys],
            "Precision": [curves[k]["deletion"].get("precision", "fp32") for k in keys],
        }
    )
    auc.insert(3, "Insertion − deletion", auc.iloc[:, 2] - auc.iloc[:, 1])
    st.dataframe(auc.round(4), hide_index=True, width="stretch")
    aucs = {k: {kind: curves[k][kind]["auc"] for kind in ("deletion", "insertion")} for k in keys}
    verdict(aucs, labels, frozenset(n for n in names if bundle.notes.get(n)))
    long = pd.DataFrame(
        [
            {"map": labels[k], "curve": kind, "fraction": f, "score": s}
            for k in keys
            for kind in ("deletion", "insertion")
            for f, s in zip(curves[k][kind]["fractions"], curves[k][kind]["scores"])
        ]
    )
    a, b = st.columns(2)
    with a:
        widgets.download_csv("AUC table as CSV", auc.round(6), "gradlens_auc.csv", key="dl_auc")
    with b:
        widgets.download_csv("Curves as CSV", long, "gradlens_curves.csv", key="dl_curves")
    perturbed_view(state, bundle, curves, labels, layer)


def verdict(aucs: dict, labels: dict, noted: frozenset[str]) -> None:
    """Per method and curve: does it beat each reference on this image; and why one image settles nothing."""
    lines = faithfulness.verdicts(aucs, labels, noted)
    if not lines:
        return
    st.markdown("\n".join(f"- {md_escape(line)}" for line in lines))
    notice(
        "One image is not evidence: these comparisons hold for this image, class and baseline only, and "
        "the order of two AUCs often flips from one image to the next. They are no verdict on a method. "
        "The Benchmark page runs the same curves over a data set and gives each method's AUC with a "
        "confidence interval, and whether it beats the references there.",
        "info",
        icon=":material/balance:",
    )
    try:
        st.page_link(
            pages.page("benchmark").script,
            label="Open the Benchmark page (intervals over a data set)",
            icon=":material/leaderboard:",
        )
    except StreamlitPageNotFoundError:  # this page was started on its own: no other page to link to
        st.caption("The Benchmark page is in the app's page list (`streamlit run dashboard/Home.py`).")


def perturbed_view(state: ViewState, bundle, curves: dict, labels: dict, layer: str) -> None:
    """The deletion and insertion inputs at one step of the curves (slider)."""
    st.subheader("The perturbed image at one step")
    keys = list(curves)
    fractions = curves[keys[0]]["deletion"]["fractions"]
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    widgets.seed("w_view_map", keys[0])
    if st.session_state["w_view_map"] not in keys:
        widgets.force("w_view_map", keys[0])
    shown = left.selectbox("Map", keys, key="w_view_map", format_func=labels.get)
    widgets.seed("w_step", min(state.step, len(fractions) - 1))
    if st.session_state["w_step"] > len(fractions) - 1:
        widgets.force("w_step", len(fractions) - 1)
    step = right.slider("Step", 0, len(fractions) - 1, key="w_step", help="0 = nothing perturbed yet")
    if step != state.step:
        navigation.commit(replace(state, step=int(step)))
    shape = next(iter(bundle.maps.values()))[layer].shape
    saliency = faithfulness.reference_map(shown, shape) if shown in REFERENCE_KEYS else bundle.maps[shown][layer]
    count = int(curves[shown]["deletion"]["counts"][step])
    images = cache.perturbed_images(state, saliency, float(fractions[step]))
    cols = st.columns(2)
    captions = []
    for col, kind in zip(cols, ("deletion", "insertion")):
        score = curves[shown][kind]["scores"][step]
        captions.append(f"{kind} at {fractions[step]:.0%}: p = {score:.3f}")
        col.image(
            pictures.enlarge(images[kind], 320),
            width="stretch",
            caption=f"{kind.capitalize()}: {fractions[step]:.0%} of the pixels ({count}) "
            f"{'removed' if kind == 'deletion' else 'put back'}; probability of "
            f"{md_escape(bundle.target_name)} = {score:.3f}",  # a checkpoint's class name is user text
        )
    grid = partial(
        pictures.compose_grid,
        [images["deletion"], images["insertion"]],
        captions,
        ncols=2,
        cell=256,
        title=f"{labels[shown]} · {state.baseline} · step {step}/{len(fractions) - 1}",
    )
    widgets.download_png("Perturbed images as PNG", grid, "gradlens_perturbed.png", key="dl_perturbed")
