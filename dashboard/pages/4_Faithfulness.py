"""Faithfulness: deletion and insertion curves of the chosen methods against random and centre maps."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from dashboard import catalog, common, figures  # noqa: E402
from dashboard.state import STEPS_RANGE, ViewState  # noqa: E402

REFERENCES = ("random", "centre")


def controls(state: ViewState) -> ViewState:
    specs = common.method_specs()
    names = [s.name for s in specs if s.name not in REFERENCES]
    labels = {s.name: s.label + (" (slow)" if s.is_slow else "") for s in specs}
    common.seed("w_methods", [m for m in state.methods if m in names] or names[:1])
    if any(m not in names for m in st.session_state["w_methods"]):
        common.force("w_methods", [m for m in st.session_state["w_methods"] if m in names] or names[:1])
    top = st.columns([3, 2], vertical_alignment="bottom")
    chosen = top[0].multiselect("Methods", names, key="w_methods", format_func=labels.get,
                                help="The random and centre maps are always drawn as references.")
    layer = common.layer_select(state, top[1])
    row = st.columns([1, 2, 1.2], vertical_alignment="bottom")
    options = list(catalog.baselines())
    common.seed("w_baseline", state.baseline if state.baseline in options else options[0])
    baseline = row[0].selectbox("Baseline", options, key="w_baseline",
                                help="What a removed pixel becomes (deletion) and what the insertion curve starts from.")
    common.seed("w_steps", int(state.steps))
    steps = row[1].slider("Steps", STEPS_RANGE[0], STEPS_RANGE[1], step=5, key="w_steps",
                          help="Pixels are removed / added in this many equal chunks.")
    common.seed("w_slow", state.slow)
    slow = row[2].toggle("Run without asking", key="w_slow",
                         help="Otherwise the curves (and slow methods) wait for their Run button.")
    return state.with_changes(methods=tuple(chosen) or state.methods, layer=layer, baseline=baseline,
                              steps=int(steps), step=min(state.step, int(steps)), slow=slow)


def _curves(state: ViewState, bundle, names: list[str], layer: str) -> dict[str, dict]:
    out = {}
    for name in names:
        label = f"{common.method_label(name)}: deletion and insertion, {state.steps} steps each"
        out[name] = common.faithfulness_curves(state, bundle, name, layer, label)
    return out


def show(state: ViewState) -> None:
    """Draw the Faithfulness page from a view state."""
    if catalog.optional("faithfulness") is None:
        st.info("The deletion/insertion curves need `methods.faithfulness`, which has not landed in this "
                "checkout yet. The rest of the dashboard works without it.", icon=":material/construction:")
        return
    names = list(state.methods) + [r for r in REFERENCES if r not in state.methods]
    bundle = common.gated_maps(state, names, [state.layer], key="faith")
    if bundle is None:
        return
    names = [n for n in names if n in bundle.maps]
    layer = next(iter(bundle.maps[names[0]]))
    per_method = 2 * (state.steps + 1)
    run_key = (state.model, state.image, state.target, layer, state.baseline, state.steps, tuple(names))
    ran: set = st.session_state.setdefault("_curves_ran", set())
    if not (state.slow or run_key in ran):
        with st.container(border=True):
            st.markdown(f":material/hourglass_top: The curves cost about {per_method} forward passes per map "
                        f"({len(names)} maps, {per_method * len(names)} in all, batched).")
            if not st.button("Run the curves", key="faith_run", icon=":material/play_arrow:"):
                return
    curves = _curves(state, bundle, names, layer)
    ran.add(run_key)
    labels = {n: common.method_label(n) for n in names}
    deletion = {n: curves[n]["deletion"][:2] for n in names}
    insertion = {n: curves[n]["insertion"][:2] for n in names}
    fractions = curves[names[0]]["deletion"][0]
    step = min(state.step, len(fractions) - 1)

    st.caption(f"Class **{bundle.target_name}** · layer `{layer}` · baseline **{state.baseline}** · "
               f"{state.steps} steps. Grey dashed: the random and centre reference maps a method must beat.")
    st.plotly_chart(figures.curves_figure(deletion, insertion, labels=labels, references=REFERENCES,
                                          marker=float(fractions[step])), width="stretch", key="faith_fig")
    auc = pd.DataFrame({
        "Method": [labels[n] for n in names],
        "Reference": ["yes" if n in REFERENCES else "" for n in names],
        "Deletion AUC (lower is better)": [curves[n]["deletion"][2] for n in names],
        "Insertion AUC (higher is better)": [curves[n]["insertion"][2] for n in names],
    })
    auc["Insertion − deletion"] = auc.iloc[:, 3] - auc.iloc[:, 2]
    st.dataframe(auc.round(4), hide_index=True, width="stretch")
    long = pd.DataFrame([
        {"method": n, "curve": kind, "fraction": f, "score": s}
        for n in names for kind in ("deletion", "insertion")
        for f, s in zip(curves[n][kind][0], curves[n][kind][1])
    ])
    a, b = st.columns(2)
    with a:
        common.download_csv("AUC table as CSV", auc, "gradlens_auc.csv", key="dl_auc")
    with b:
        common.download_csv("Curves as CSV", long, "gradlens_curves.csv", key="dl_curves")

    st.subheader("The perturbed image at one step")
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    common.seed("w_view_method", names[0])
    shown = left.selectbox("Map", names, key="w_view_method", format_func=labels.get)
    common.seed("w_step", step)
    if st.session_state["w_step"] > len(fractions) - 1:
        common.force("w_step", len(fractions) - 1)
    new_step = right.slider("Step", 0, len(fractions) - 1, key="w_step")
    if new_step != state.step:
        common.commit(state.with_changes(step=int(new_step)))
    images = common.perturbed_images(state, bundle, shown, layer, float(fractions[new_step]))
    cols = st.columns(2)
    for col, kind in zip(cols, ("deletion", "insertion")):
        col.image(figures.enlarge(images[kind], 320), width="stretch",
                  caption=f"{kind.capitalize()} at {fractions[new_step]:.0%} of the pixels "
                          f"(score {curves[shown][kind][1][new_step]:.3f})")
    grid = figures.compose_grid([images["deletion"], images["insertion"]],
                                [f"deletion {fractions[new_step]:.0%}", f"insertion {fractions[new_step]:.0%}"],
                                ncols=2, cell=256, title=f"{labels[shown]} · {state.baseline} baseline")
    common.download_png("Perturbed images as PNG", grid, "gradlens_perturbed.png", key="dl_perturbed")


if __name__ == "__main__":
    common.run_page("faithfulness", show, controls)
