"""The Advisor page: which method, layer and normalization to trust on a model and an image set.

Bounded choices (a catalog classifier, 2 to 30 scenes, the sample photos, the quokka or the first 2 to
30 images of an annotated set in the results folder, cheap methods unless a
slow one is picked, 5 to 30 curve steps), the cost before a click, a progress bar with Cancel, then
the recommendation with its evidence, the ranked table with bootstrap intervals as error bars, the
sanity verdicts, the report's files and "Save to Review". The work is
:func:`methods.advisor.advise`; everything a model or a user named (class, layer, method labels)
is escaped (``md_escape``, ``plotly_text``, ``st.text``, dataframes).
"""

from __future__ import annotations

import json

import streamlit as st

import methods
from dashboard.app import cache, jobs, save_panel, uploads
from dashboard.app.errors import md_escape, shown_errors
from dashboard.core import menus
from dashboard.draw.advisor import ranking_figure, row_label
from dashboard.views.advisor import settings as adv
from methods.advisor import METRICS, NORMALIZATIONS, Advice, AdviseOptions
from methods.advisor.options import DEFAULT_METHODS
from methods.advisor.review import advice_snapshot
from methods.data.photos import PHOTOS

__all__ = ["show", "RESULT_KEY"]

_COLUMNS = {
    "candidate": "candidate",
    "n": "n",
    "mean": "mean",
    "low": "low",
    "high": "high",
    "diff_best": "Δ vs best",
    "p_best": "p vs best",
    "random_mean": "random map",
    "p_random": "p vs random",
    "beats_random": "beats random",
}
RESULT_KEY = "_advisor_result"  # (job, Advice) of the last finished run in this session
_QUERY_READ = "_advisor_query_read"


def _models() -> dict[str, str]:
    """Available classifiers: id -> domain; this session's uploaded checkpoints too, their domain
    read from their class names (the scenes', ImageNet's 1000, or ``"custom"``: your data set only)."""
    found = {m.id: m.domain for m in menus.model_choices() if m.available and m.task == "classification"}
    for upload_id, info in uploads.uploaded_models().items():
        names = tuple(info.get("class_names") or ())
        if getattr(info["handle"].loaded, "task", "classification") == "classification":
            found[upload_id] = adv.upload_domain(names)
    return found


def _label(model_id: str) -> str:
    info = uploads.uploaded_models().get(model_id)
    return model_id if info is None else f"Uploaded: {info['name']} ({info['arch']})"


def _choice(models: dict[str, str]) -> adv.Choice:
    ids = list(models)
    default = adv.Choice(model=ids[0])
    if not st.session_state.get(_QUERY_READ):  # the link's choice seeds the widgets once
        st.session_state[_QUERY_READ] = True
        query = {k: st.query_params.get(k) for k in ("model", "images", "n", "metric", "dataset")}
        seeded, notes = adv.from_query(query, ids, default)
        for note in notes:
            st.caption(md_escape(note))
        for key, value in vars(seeded).items():
            st.session_state.setdefault(f"adv_{key}", _label(value) if key == "model" else value)
    a, b, c, d = st.columns([2, 3, 1, 2])
    by_label = {_label(i): i for i in ids}  # an upload by its file name; a catalog model by its id
    if st.session_state.get("adv_model") not in by_label:  # an upload dropped from the session
        st.session_state["adv_model"] = ids[0]
    model = by_label[
        a.selectbox(
            "Model",
            list(by_label),
            key="adv_model",
            help="An available classifier of the catalog, or a checkpoint uploaded in the sidebar.",
        )
    ]
    kinds = adv.kinds_for(models[model])
    if st.session_state.get("adv_images") not in kinds:
        st.session_state["adv_images"] = kinds[0]
    images = b.radio("Images", kinds, key="adv_images", format_func=adv.KINDS.get, horizontal=True)
    n = c.number_input(
        "How many",
        *adv.N_RANGE,
        key="adv_n",
        disabled=images in adv.PHOTO_KINDS,
        help="Scenes to score, or the first images of your data set.",
    )
    dataset = ""
    if images == "dataset":
        dataset = st.text_input(
            "Data set (FORMAT:PATH in the results folder)",
            key="adv_dataset",
            max_chars=adv.MAX_DATASET_TEXT,
            placeholder="masks:val  ·  coco:val/instances.json  ·  voc:VOC2012  ·  imagefolder:val",
            help="An annotated set on this server, below the results folder the operator set "
            "(GRADLENS_RESULTS_ROOT, default ./results): COCO JSON, Pascal VOC, ImageFolder or a mask folder "
            "(docs/datasets.md). Class names must be the model's. ImageFolder has no masks: rank by a curve metric.",
        )
    metrics = [k for k, m in METRICS.items() if images != "photos" or not m.needs_masks]
    if st.session_state.get("adv_metric") not in metrics:
        st.session_state["adv_metric"] = metrics[0]
    metric = d.selectbox("Rank by", metrics, key="adv_metric", format_func=lambda k: METRICS[k].label)
    choice = adv.Choice(model=model, images=images, n=int(n), metric=metric, dataset=str(dataset).strip())
    st.query_params.from_dict(adv.to_query(choice))
    return choice


def _options(choice: adv.Choice) -> AdviseOptions | None:
    specs = [s for s in methods.list_methods() if s.family != "baseline" and s.family != "attention"]
    labels = {s.name: s.label + (" (slow)" if s.slow else "") for s in specs}
    e, f = st.columns([3, 2])
    chosen = e.multiselect(
        "Methods",
        [s.name for s in specs],
        default=[m for m in DEFAULT_METHODS[:3] if m in labels],
        key="adv_methods",
        format_func=labels.get,
        help="The random map is always added as the reference. Slow methods run after the cheap ones.",
    )
    norms = f.multiselect(
        "Normalizations",
        list(NORMALIZATIONS),
        default=["minmax", "relu_minmax", "percentile"],
        key="adv_norms",
        format_func=lambda k: NORMALIZATIONS[k].label,
        help="Those a metric cannot tell apart (a positive affine rescaling) are scored once, one row.",
    )
    g, h, i = st.columns(3)
    layers = g.radio(
        "Layers",
        ["auto", "default"],
        key="adv_layers",
        horizontal=True,
        help="auto: the default layer and two earlier stages.",
    )
    steps = h.slider("Curve steps", 5, 30, 10, step=5, key="adv_steps")
    n_sanity = i.number_input("Sanity-check images", 0, 3, 2, key="adv_sanity", help="0 skips the sanity check.")
    if not chosen or not norms:
        st.info("Choose at least one method and one normalization.")
        return None
    return AdviseOptions(
        methods=tuple(chosen),
        layers=layers,
        normalizations=tuple(norms),
        metric=choice.metric,
        include_slow=any(methods.get_method(m).slow for m in chosen),
        n_sanity=int(n_sanity),
        n_boot=1000,
        steps=int(steps),
    )


def _run(choice: adv.Choice, options: AdviseOptions) -> Advice | None:
    job = ("advisor", choice, options)
    held = st.session_state.get(RESULT_KEY)
    if held is not None and held[0] == job:
        return held[1]
    n_layers = options.max_layers if options.layers == "auto" else 1
    n = {"photos": len(PHOTOS), "quokka": 1}.get(choice.images, choice.n)
    explained = None
    if choice.images == "dataset":
        if not choice.dataset:
            st.info("Type the data set: FORMAT:PATH in the results folder, e.g. masks:val.")
            return None
        names = cache.model_handle(choice.model).loaded.class_names
        n, explained = adv.explained_pairs(adv.images_spec("dataset", n, choice.dataset), n, names)
    total = adv.forwards(
        choice.images,
        n,
        len(options.methods),
        n_layers,
        len(options.normalizations),
        options.steps,
        choice.metric,
        explained=explained,
    )
    slow = [methods.get_method(m).label for m in options.methods if methods.get_method(m).slow]
    text = (
        f":material/hourglass_top: Up to {total:,} forward passes (batched by 32) for {n} image(s), "
        f"{len(options.methods)} method(s) x up to {n_layers} layer(s), plus the maps and the sanity check "
        f"({int(options.n_sanity)} image(s))." + (f" Slow methods: {md_escape(', '.join(slow))}." if slow else "")
    )
    if not jobs.wait_for_click(job, text, "Run the Advisor", key="adv_run"):
        return None

    device = cache.session_device()

    handle = cache.model_handle(choice.model)

    def work(
        tracker,
    ):  # a private copy of the model in a slow-job slot and a slot of its GPU: the shared one stays free
        with cache.private_model(handle, tracker) as own:
            return adv.run(own, choice, options, tracker, device=device)

    advice = jobs.run_with_progress(work, "Running the Advisor", job=job)
    jobs.mark_ran(job)
    st.session_state[RESULT_KEY] = (job, advice)
    return advice


def _result(advice: Advice, choice: adv.Choice) -> None:
    box = st.success if advice.beats_random else st.warning
    icon = ":material/verified:" if advice.beats_random else ":material/warning:"
    box(f"**Recommendation.** {md_escape(advice.recommendation)}", icon=icon)
    st.caption(
        f"Beats the random map (non-overlapping intervals, paired p < 0.05): **{'yes' if advice.beats_random else 'no'}** · "
        f"clear winner over the next best: **{'yes' if advice.clear_winner else 'no'}** · "
        f"{advice.evaluations} image(s) scored in {advice.seconds:.0f} s."
    )
    for note in advice.notes:
        st.markdown(f"- {md_escape(note)}")
    st.plotly_chart(ranking_figure(advice.table, advice.metric_label, advice.better), key="adv_figure")
    table = advice.table.copy()
    table.insert(0, "candidate", [row_label(r) for r in table.to_dict(orient="records")])
    shown = table[list(_COLUMNS)].rename(columns=_COLUMNS)
    number = st.column_config.NumberColumn
    st.dataframe(
        shown,
        hide_index=True,
        key="adv_table",
        column_config={
            c: number(format="%.3f") for c in _COLUMNS.values() if c not in ("candidate", "n", "beats random")
        }
        | {"p vs best": number(format="%.3g"), "p vs random": number(format="%.3g")},
    )
    if advice.sanity:
        st.subheader("Sanity check")
        for v in advice.sanity:
            word = {True: "passes", False: "fails: dropped", None: "cannot tell"}[v.passes]
            st.text(f"{v.label} at {v.layer}: {word} ({v.verdicts.count(True)} of {len(v.verdicts)} image(s) pass)")
    a, b = st.columns(2)
    a.download_button(
        "advice.json",
        json.dumps(advice.to_dict(), indent=1, default=str),
        file_name="advice.json",
        key="adv_dl_json",
        on_click="ignore",
        icon=":material/download:",
    )
    b.download_button(
        "advice.md",
        advice.to_markdown(),
        file_name="advice.md",
        key="adv_dl_md",
        on_click="ignore",
        icon=":material/download:",
    )
    with st.expander("Save to Review"), shown_errors(doing="saving the advice to Review"):
        author = save_panel.identity_panel("advisor")
        if st.button("Save to Review", key="adv_save", icon=":material/bookmark_add:", disabled=not author):
            with cache.locked(cache.model_handle(choice.model)) as loaded:
                image = adv.first_image(loaded, choice)
                snapshot = advice_snapshot(advice, loaded, image, author=author)
            sid = save_panel.store().save(snapshot)
            link = save_panel.snapshot_link(sid)
            st.success(
                f"Saved as snapshot `{sid}`. Link (relative to this app): [{link}]({link})", icon=":material/check:"
            )


def show() -> None:
    """The Advisor page under its title (``dashboard/pages/10_Advisor.py``)."""
    st.caption(
        "Which map to trust on this model and these images: methods x layers x normalizations ranked by one metric, "
        "with bootstrap intervals, paired tests against the best and the random map, and a sanity check."
    )
    models = _models()
    if not models:
        st.info("No classifier is available on this machine.")
        return
    with shown_errors(doing="drawing the Advisor's choices") as outcome:
        choice = _choice(models)
        options = _options(choice)
    if outcome.failed or options is None:
        return
    with shown_errors(doing="running the Advisor"):
        advice = _run(choice, options)
        if advice is not None:
            _result(advice, choice)
