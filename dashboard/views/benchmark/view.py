"""The Benchmark page: a data set's numbers with their uncertainty.

Open an evaluate result or a batch manifest (a path on the server or an upload), or run a small
evaluation here; then the leaderboard (:func:`methods.metrics.benchmark.leaderboard.leaderboard`: means
with bootstrap intervals, paired differences to the random and centre maps with p-values), one
metric's distribution per method, where the metrics disagree (their rank correlations over the
methods), a per-class breakdown, and a link that opens one scored image on
the Methods page. Everything a file or a user typed is shown as text (``st.text``, dataframes,
``errors.notice``/``md_escape``).
"""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

import methods
from dashboard.app import cache, jobs, widgets
from dashboard.app.errors import md_escape, notice, show_deferred_errors, shown_errors
from dashboard.app.navigation import link_query
from dashboard.core import menus, pages, services
from dashboard.draw.benchmark import distribution_figure
from dashboard.views.benchmark import data as bd
from dashboard.views.benchmark import evaluation
from dashboard.views.benchmark.agreement import show_agreement
from methods.errors import Cancelled
from methods.metrics.benchmark.leaderboard import METRICS, REFERENCES, leaderboard, per_class
from methods.models.catalog import load_model

__all__ = ["show", "TABLE_KEY"]

TABLE_KEY = "_bm_table"  # (Table, digest) of the open table


def _keep(table: bd.Table) -> None:
    digest = hashlib.sha1(pd.util.hash_pandas_object(table.frame.astype(str), index=False).values.tobytes()).hexdigest()
    st.session_state[TABLE_KEY] = (table, digest)


def _on_upload() -> None:
    file = st.session_state.get("bm_upload")
    if file is None:
        return
    with shown_errors(file.name, defer_to="bm_upload", doing="reading the uploaded table"):
        _keep(bd.read_table(file.getvalue(), file.name))


def _on_path() -> None:
    with shown_errors(defer_to="bm_path", doing="reading the table"):
        _keep(bd.read_path(st.session_state.get("bm_path", "")))


def _scene_models() -> list[str]:
    return [m.id for m in menus.model_choices() if m.available and m.id.startswith("scenes_")]


def _run_tab() -> None:
    specs = [s for s in methods.list_methods() if s.name not in REFERENCES]
    fast = [s.name for s in specs if not s.is_slow]
    labels = {s.name: s.label + (" (slow)" if s.is_slow else "") for s in specs}
    a, b, c = st.columns([2, 3, 1])
    model = a.selectbox("Model", _scene_models(), key="bm_model", help="A model trained on the scenes' classes.")
    kind = b.radio("Images", list(evaluation.KINDS), key="bm_kind", format_func=evaluation.KINDS.get, horizontal=True)
    n = c.number_input("Scenes", 1, evaluation.MAX_SCENES, 3, key="bm_n")
    d, e, f = st.columns([3, 2, 1])
    chosen = d.multiselect(
        "Methods",
        [s.name for s in specs],
        default=[m for m in ("gradcam", "gradcampp") if m in fast],
        key="bm_methods",
        format_func=labels.get,
        help="The random and centre maps are always added.",
    )
    steps = e.slider("Steps", 5, 50, 20, step=5, key="bm_steps", help="Deletion/insertion steps per curve.")
    seed = f.number_input("Seed", 0, 1_000_000, 0, key="bm_seed")
    if not chosen:
        st.info("Choose at least one method.")
        return
    per_image = evaluation.forwards_per_image(kind, len(chosen), 1, int(steps))
    job = ("benchmark", model, kind, int(n), tuple(chosen), int(steps), int(seed))
    text = (
        f":material/hourglass_top: About {per_image * int(n):,} forward passes (batched by 32) for {int(n)} scene(s) "
        f"on the default layer, plus the maps: {md_escape(model)}, seed {int(seed)}."
    )
    runs: dict = st.session_state.setdefault("_bm_runs", {})
    if job in runs:  # ran before in this session: its table is kept, nothing runs again
        _run_download(runs[job], kind, int(n))
        return
    if not jobs.wait_for_click(job, text, "Run the evaluation", key="bm_run"):
        return

    device = cache.session_device()

    def work(
        tracker,
    ):  # a fresh copy of the model, in a slow-job slot (and a slot of its GPU): the shared one stays free
        with cache.slow_slot(tracker), cache.device_slot(device, tracker):
            return evaluation.run_small(
                load_model(model),
                device=device,
                kind=kind,
                n=int(n),
                methods=chosen,
                steps=int(steps),
                seed=int(seed),
                progress=tracker,
            )

    df = jobs.run_with_progress(work, f"Scoring {int(n)} scene(s)", job=job)
    jobs.mark_ran(job)
    runs[job] = data = evaluation.to_parquet(df)
    _keep(bd.read_table(data, f"{kind}_{int(n)}_{model}.parquet"))
    _run_download(data, kind, int(n))


def _run_download(data: bytes, kind: str, n: int) -> None:
    st.caption("Done: its table is open below.")
    st.download_button(
        "This evaluation as .parquet",
        data,
        file_name=f"gradlens_{kind}_{n}.parquet",
        key="bm_dl_run",
        icon=":material/download:",
        on_click="ignore",
    )


def _source() -> None:
    path_tab, upload_tab, run_tab = st.tabs(["Path on the server", "Upload", "Run a small evaluation"])
    with path_tab:
        if bd.results_root() is None:
            st.info("Reading tables from the server is turned off here; upload the table instead.")
        else:
            a, b = st.columns([5, 1], vertical_alignment="bottom")
            a.text_input(
                "Path of an evaluate result or a batch manifest (.parquet or .csv), in the results folder",
                key="bm_path",
                placeholder="results.parquet  or  OUTDIR/manifest.parquet",
                help="Relative to the results folder the operator set with $GRADLENS_RESULTS_ROOT (default: "
                "results/ in the server's working folder). Nothing outside it is read.",
            )
            b.button("Open", key="bm_open", on_click=_on_path, icon=":material/folder_open:")
            show_deferred_errors("bm_path")
    with upload_tab:
        st.file_uploader(
            "An evaluate result or a batch manifest", type=["parquet", "csv"], key="bm_upload", on_change=_on_upload
        )
        st.caption("A manifest's pictures stay on the server: open it by its path to see them.")
        show_deferred_errors("bm_upload")
    with run_tab:
        with shown_errors(doing="running the evaluation"):
            _run_tab()


@st.cache_data(show_spinner=False, max_entries=16)
def _board(digest: str, n_boot: int, seed: int, test: str, _df: pd.DataFrame, _progress=None) -> pd.DataFrame:
    return leaderboard(_df, n_boot=n_boot, seed=seed, test=test, progress=_progress)


def _leaderboard(df: pd.DataFrame, digest: str, n_boot: int, seed: int, test: str) -> pd.DataFrame | None:
    """The leaderboard as long work of this session: a progress bar with Cancel, stopped between two
    method x layer groups when the tab closes; once cancelled it waits for a button."""
    label = f"Bootstrapping the intervals ({n_boot:,} resamples, seed {seed}, {test} test)"

    def work(progress):
        return _board(digest, n_boot, seed, test, _df=df, _progress=progress)

    try:
        return jobs.run_with_progress(work, label)
    except Cancelled:
        if not st.button("Compute the leaderboard", key="bm_board_run", icon=":material/play_arrow:"):
            st.info("The leaderboard was cancelled.")
            return None
    return jobs.run_clicked(work, label)


@st.cache_data(show_spinner=False, max_entries=64)
def _classes(digest: str, metric: str, n_boot: int, seed: int, _df: pd.DataFrame) -> pd.DataFrame:
    return per_class(_df, metric, n_boot=n_boot, seed=seed)


def _evaluate_view(table: bd.Table, digest: str) -> None:
    df = table.frame
    facts = [f"{df['image'].nunique()} image(s)", f"{len(df)} rows"]
    for col, what in (("model", "model"), ("steps", "steps"), ("baseline", "deletion baseline")):
        if col in df.columns:
            facts.append(f"{what} {', '.join(map(str, dict.fromkeys(df[col])))}")
    st.caption(md_escape(f"{table.name} · " + " · ".join(facts)))
    a, b, c = st.columns(3)
    n_boot, fewer = bd.resamples_for(
        df, int(a.number_input("Bootstrap resamples", 100, 20_000, 2000, step=100, key="bm_nboot"))
    )
    if fewer:
        notice(fewer, "info")
    seed = int(b.number_input("Bootstrap seed", 0, 1_000_000, 0, key="bm_bseed"))
    test = c.selectbox(
        "Paired test",
        ["auto", "wilcoxon", "sign"],
        key="bm_test",
        format_func={
            "auto": "auto (sign test on 0/1 metrics, Wilcoxon otherwise)",
            "wilcoxon": "Wilcoxon signed-rank",
            "sign": "exact sign test",
        }.get,
    )
    board = _leaderboard(df, digest, n_boot, seed, test)
    if board is None:
        return
    for note in board.attrs.get("notes", []):
        notice(note, "info")
    tables = bd.leaderboard_tables(board)
    st.subheader("Leaderboard", anchor=False)
    st.caption(
        "Mean over the rows, then the 95 % percentile-bootstrap interval in brackets; ↓ lower is better, ↑ higher is better. "
        "Increase and pointing game are % of the rows."
    )
    st.dataframe(tables["means"], hide_index=True, width="stretch", key="bm_means")
    for ref in REFERENCES:
        if ref in tables:
            st.markdown(f"**Paired difference to the {ref} map** (method − {ref}, same image and class, same layer)")
            st.dataframe(tables[ref], hide_index=True, width="stretch", key=f"bm_diff_{ref}")
    st.caption(
        "Beating a reference: a negative difference on deletion AUC and Average Drop, a positive one on "
        "the others. p: two-sided, no correction for the many comparisons. Published numbers are not shown "
        "beside these (docs/dashboard.md says why)."
    )
    widgets.download_csv("Leaderboard as CSV", board, "gradlens_leaderboard.csv", key="bm_dl_board")
    _details(df, digest, n_boot, seed)
    show_agreement(df, digest)


def _details(df: pd.DataFrame, digest: str, n_boot: int, seed: int) -> None:
    metrics = [m for m in METRICS if m in df.columns and df[m].notna().any()]
    layers = list(dict.fromkeys(df["layer"]))
    st.subheader("Distribution per method", anchor=False)
    a, b, c = st.columns([2, 2, 1])
    metric = a.selectbox("Metric", metrics, key="bm_metric", format_func=lambda m: METRICS[m].label)
    layer = b.selectbox("Layer", layers, key="bm_layer")
    kind = c.radio("Plot", ["box", "violin"], key="bm_plot", horizontal=True)
    labels = {s.name: s.label for s in methods.list_methods()}
    st.plotly_chart(distribution_figure(df, metric, layer, kind=kind, labels=labels), width="stretch", key="bm_fig")

    st.subheader("Per class", anchor=False)
    classes = _classes(digest, metric, n_boot, seed, _df=df)
    classes = classes[classes["layer"] == layer]
    wide = (
        classes.assign(value=[f"{bd.cell(r.mean, r.low, r.high, metric)} (n={r.n})" for r in classes.itertuples()])
        .pivot(index="target_name", columns="method", values="value")
        .rename_axis(columns=None)
    )
    wide = wide[[m for m in dict.fromkeys(classes["method"])]].reset_index().rename(columns={"target_name": "class"})
    st.dataframe(wide, hide_index=True, width="stretch", key="bm_classes")

    st.subheader("One image", anchor=False)
    rows_of = [m for m in dict.fromkeys(df.loc[df["layer"] == layer, "method"])]
    method = st.selectbox("Method", rows_of, key="bm_row_method", format_func=lambda m: labels.get(m, m))
    rows = df[(df["method"] == method) & (df["layer"] == layer)]
    ascending = METRICS[metric].better == "higher"  # the worst maps first
    rows = rows.sort_values(metric, ascending=ascending, kind="stable", na_position="last")
    shown = rows[["image", "target_name", *metrics]].reset_index(drop=True)
    st.caption(f"Sorted by {METRICS[metric].label}, worst first. Click a row to pick it.")
    event = st.dataframe(
        shown, hide_index=True, width="stretch", key="bm_rows", on_select="rerun", selection_mode="single-row"
    )
    picked = (event.selection.rows if event is not None and hasattr(event, "selection") else []) or [0]
    if not len(rows):
        return
    row = rows.iloc[int(picked[0])]
    choices = services.choices()
    view, why = bd.methods_view(df, row, choices.models or (), choices.methods or ())
    if view is None:
        notice(why, "info")
        return
    try:
        st.page_link(
            pages.page("methods").script,
            label=md_escape(f"Open {row['image']} · {row['target_name']} on the Methods page"),
            query_params=link_query(view),
            icon=":material/open_in_new:",
        )
    except StreamlitPageNotFoundError:  # this page was started on its own: no other page to link to
        st.caption(
            md_escape(f"{row['image']} · {row['target_name']}: open it on the Methods page of the whole app ")
            + "(`streamlit run dashboard/Home.py`)."
        )


def _manifest_view(table: bd.Table) -> None:
    df = table.frame
    st.caption(md_escape(f"{table.name} · batch manifest · {df['image'].nunique()} image(s) · {len(df)} maps"))
    notice(
        "A batch manifest holds maps and pictures, not scores: for a leaderboard run "
        "`python -m methods.evaluate` on the same images.",
        "info",
    )
    st.subheader("Per method and layer", anchor=False)
    st.dataframe(bd.manifest_summary(df).round(4), hide_index=True, width="stretch", key="bm_manifest")
    if "target_name" in df.columns:
        st.subheader("Per class", anchor=False)
        counts = df.groupby(["target_name", "method"], sort=False).size().unstack(fill_value=0).reset_index()
        st.dataframe(
            counts.rename(columns={"target_name": "explained class"}),
            hide_index=True,
            width="stretch",
            key="bm_manifest_classes",
        )
    st.subheader("One image", anchor=False)
    a, b = st.columns(2)
    images, cut = bd.capped_menu(list(dict.fromkeys(df["image"])), "images")
    image = a.selectbox("Image", images, key="bm_m_image")
    pairs = df[df["image"] == image]
    picks, cut_maps = bd.capped_menu(list(range(len(pairs))), f"maps of {image}")
    for message in (cut, cut_maps):
        if message:
            notice(message, "info")
    pick = b.selectbox(
        "Map",
        picks,
        key="bm_m_row",
        format_func=lambda i: f"{pairs.iloc[i]['method']} · {pairs.iloc[i]['layer']}",
    )
    row = pairs.iloc[int(pick)]
    if table.folder is None:
        st.info("Opened from an upload: the pictures are on the server; open the manifest by its path to see them.")
        return
    cols = st.columns(3)
    for col, view in zip(cols, ("original", "heatmap", "overlay")):
        value = row.get(view)  # a manifest-shaped table may lack the column
        path = bd.picture_path(table.folder, value) if isinstance(value, str) else None
        if path is None:
            col.text(f"{view}: {value} is not in the manifest's folder")
        else:
            col.image(str(path), caption=md_escape(f"{view} · {row['target_name']}"), width="stretch")


def show() -> None:
    """The Benchmark page under its title (``dashboard/pages/8_Benchmark.py``)."""
    st.caption("Data-set-level numbers with their uncertainty, from `python -m methods.evaluate` or a run here.")
    with shown_errors(doing="drawing the table choices"):
        _source()
    held = st.session_state.get(TABLE_KEY)
    if held is None:
        st.info("Open a table above, or run a small evaluation.")
        return
    table, digest = held
    with shown_errors(doing="drawing the benchmark"):
        if table.kind == "evaluate":
            _evaluate_view(table, digest)
        else:
            _manifest_view(table)
