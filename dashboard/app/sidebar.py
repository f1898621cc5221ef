"""The sidebar every page shares: model, image, target class, display options.

Each widget is keyed (``w_<field>``) and seeded from the view state, so choices persist across
pages (Streamlit drops a widget's state when a page without it runs; the view state keeps it)
and can be set from the URL. Uploads are registered in ``on_change`` / ``on_click`` callbacks,
which run before the script, so the menus can select the new upload in the same run. Every
message that quotes a link, a file name or a stored value goes through ``errors.notice``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import streamlit as st

from dashboard.app import cache, model_fit, uploads
from dashboard.app.errors import notice, show_deferred_errors, shown_errors
from dashboard.app.widgets import force, refresh_label, seed
from dashboard.core import devices, menus, services
from dashboard.core.params import is_upload
from dashboard.core.scene_ids import is_scene_id, scene_label
from dashboard.core.state import DEFAULT_MODEL, ViewState
from methods.errors import OptionError, suggest

__all__ = ["sidebar"]

_TOP_K = 5
_AUTO = -1  # the target menu's "top-1 prediction" (a selectbox shows None as "nothing chosen")
_NORM_LABELS = {"raw": "raw", "minmax": "min-max", "max": "max", "percentile": "percentile"}
_NO_URL = "Uploaded files stay in this browser session: they cannot travel in a URL."
_CKPT_OPEN = "w_ckpt_open"  # the checkpoint panel's open state: kept open across errors and pages
_CKPT_FIELDS = {"w_ckpt_arch": None, "w_ckpt_classes": 10, "w_ckpt_names": ""}


def _on_image_upload() -> None:
    file = st.session_state.get("w_image_upload")
    if file is None:
        return
    with shown_errors(file.name, defer_to="image", doing="reading the uploaded image"):
        force("w_image", uploads.register_uploaded_image(file.getvalue(), file.name))


def _on_checkpoint_load() -> None:
    force(_CKPT_OPEN, True)  # the panel stays open: after an error every field is as the user left it
    file = st.session_state.get("w_ckpt_file")
    with shown_errors(defer_to="checkpoint", doing="loading the checkpoint"):
        if file is None:
            raise OptionError("choose a checkpoint file first")
        text = st.session_state.get("w_ckpt_names") or ""
        names = tuple(n.strip() for n in text.replace(",", "\n").splitlines() if n.strip()) or None
        force(
            "w_model",
            uploads.load_uploaded_checkpoint(
                file.getvalue(),
                file.name,
                st.session_state.get("w_ckpt_arch"),
                int(st.session_state.get("w_ckpt_classes") or 0),
                names,
            ),
        )


def _on_hf_load() -> None:
    force(_CKPT_OPEN, True)
    files = st.session_state.get("w_hf_files") or []
    with shown_errors(defer_to="hf", doing="loading the Hugging Face model"):
        if not files:
            raise OptionError("choose the folder's files first: config.json and model.safetensors")
        name = (st.session_state.get("w_hf_name") or "").strip()
        force("w_model", uploads.load_uploaded_huggingface([(f.name, f.getvalue()) for f in files], name))


def _hf_panel() -> None:
    """A Hugging Face image classifier from its folder's files (no code from it runs)."""
    st.divider()
    st.file_uploader(
        "Or a Hugging Face folder: config.json, model.safetensors (and preprocessor_config.json)",
        type=["json", "safetensors"],
        accept_multiple_files=True,
        key="w_hf_files",
        help="An AutoModelForImageClassification folder (ViT, DeiT, BEiT, Swin, ConvNeXt, DINOv2 ...), as "
        "save_pretrained writes it. Safetensors only; a config that asks for the repository's code is refused.",
    )
    st.text_input("Name (optional)", key="w_hf_name", max_chars=80)
    st.button("Load Hugging Face model", on_click=_on_hf_load, key="w_hf_load")
    show_deferred_errors("hf")


def _checkpoint_panel(sb) -> None:
    """File, architecture, classes, names and Load, with the library's message (once, as it is)
    under the button. Its open state and fields live in the session: an error keeps them."""
    archs = services.checkpoint_architectures()
    saved = st.session_state.setdefault("_ckpt_fields", {})
    defaults = {**_CKPT_FIELDS, "w_ckpt_arch": archs[0] if archs else None, _CKPT_OPEN: False}
    for key, default in defaults.items():
        seed(key, saved.get(key, default))
    with sb.expander("Upload a checkpoint", key=_CKPT_OPEN, on_change="rerun"):
        st.file_uploader(
            "Checkpoint file (state_dict or safetensors; timm ViT, DeiT, BEiT, Swin are in the menu)",
            type=["pt", "pth", "ckpt", "bin", "safetensors"],
            key="w_ckpt_file",
        )
        st.selectbox("Architecture", archs, key="w_ckpt_arch")
        st.number_input("Number of classes", min_value=1, max_value=100_000, step=1, key="w_ckpt_classes")
        st.text_area("Class names (optional, one per line)", key="w_ckpt_names", height=80)
        st.button("Load checkpoint", on_click=_on_checkpoint_load, disabled=not archs, key="w_ckpt_load")
        show_deferred_errors("checkpoint")
        _hf_panel()
        st.caption(_NO_URL)
    saved.update({key: st.session_state.get(key) for key in defaults})


def _model_section(view: ViewState, messages: list[str]) -> ViewState:
    sb = st.sidebar
    sb.subheader("Model")
    models = menus.model_choices()
    held = uploads.uploaded_models()
    options = [m.id for m in models] + list(held)
    labels = {m.id: m.label + ("" if m.available else " · weights missing") for m in models}
    labels.update({k: f"Uploaded: {v['name']} ({v['arch']})" for k, v in held.items()})
    if view.model not in options:
        fallback = DEFAULT_MODEL if DEFAULT_MODEL in options else options[0]
        if is_upload(view.model):
            messages.append(
                f"The uploaded checkpoint {view.model} is not in this session: {_NO_URL} "
                f"Showing {fallback}; upload the checkpoint again to see it."
            )
        else:
            messages.append(f"Model {view.model!r} is not available here; showing {fallback}.")
        view = replace(view, model=fallback)
        force("w_model", view.model)
    seed("w_model", view.model)
    if st.session_state["w_model"] not in options:
        force("w_model", view.model)
    model_id = sb.selectbox("Model", options, key="w_model", format_func=lambda k: labels.get(k, k))
    if model_id != view.model:  # another model: other layers and classes
        view = replace(view, model=model_id, layer=None, layers=(), target=None, image=_image_after(view, model_id))
        for key in ("w_layer", "w_layers", "w_target"):
            st.session_state.pop(key, None)
    choice = next((m for m in models if m.id == model_id), None)
    if choice is not None and choice.trained_on:
        sb.caption(f"Trained on: {choice.trained_on}")  # the catalog's card (no user input)
    view = _device_choice(sb, view, messages)
    notice_text = choice.notice if choice is not None else ""
    if notice_text:
        sb.warning(notice_text, icon=":material/cloud_off:")  # the library's text and path (no user input)
    for text in uploads.upload_notes():
        notice(text, "info", sb, icon=":material/delete_sweep:")
    _checkpoint_panel(sb)
    return view


def _device_choice(sb, view: ViewState, messages: list[str]) -> ViewState:
    """The device menu: the devices present (``devices.present()``), the machine's default first
    chosen. Picking the default leaves the view's ``device`` empty (a link then means "the
    default device" on whatever machine opens it); the session's models follow the choice."""
    options = list(devices.present())
    default = str(devices.default())
    if view.device and view.device not in options:  # a snapshot or a hand-edited link of another machine
        messages.append(f"Device {view.device!r} is not on this machine; using {default}.")
        view = replace(view, device=devices.AUTO)
        force("w_device", default)
    seed("w_device", view.device or default)
    if st.session_state["w_device"] not in options:
        force("w_device", default)
    picked = sb.selectbox(
        "Device",
        options,
        key="w_device",
        format_func=lambda d: devices.label(d) + (" (default)" if d == default else ""),
        help="Where the models run. The devices of this machine; a GPU runs the score methods and the "
        "faithfulness curves in bf16 where it supports it (precision auto).",
        disabled=len(options) == 1,
    )
    view = replace(view, device=devices.AUTO if picked == default else picked)
    cache.use_device(view.device)
    return view


def _image_after(view: ViewState, model_id: str) -> str:
    """The image once the model changes: a gallery sample of the other domain (a scene for an
    ImageNet model, a photo for a scene model) gives way to the new model's default sample
    ("" here: the image menu then picks it); a sample that fits, or an upload, stays."""
    new = model_fit.model_choice(model_id)
    shown = menus.image_domain(view.image) if view.image else None
    if new is None or shown is None or new.domain not in ("scenes", "imagenet") or shown == new.domain:
        return view.image
    return ""


def _image_section(view: ViewState, messages: list[str]) -> ViewState:
    sb = st.sidebar
    sb.subheader("Image")
    samples = menus.sample_choices()
    held = uploads.uploaded_images()
    options = [s.id for s in samples] + list(held)
    labels = {s.id: s.label for s in samples}
    labels.update({k: f"Uploaded: {v['name']}" for k, v in held.items()})
    if is_scene_id(view.image):  # an evaluated scene, opened from the Benchmark page
        options.append(view.image)
        labels[view.image] = scene_label(view.image)
    if view.image not in options:
        fallback = menus.default_image(view.model)
        if is_upload(view.image):
            messages.append(
                f"The uploaded image {view.image} is not in this session: {_NO_URL} "
                f"Showing {fallback}; upload the image again to see it."
            )
        elif view.image:
            messages.append(f"Image {view.image!r} is not a sample here; showing {fallback}.")
        view = replace(view, image=fallback)
        force("w_image", fallback)
    seed("w_image", view.image)
    if st.session_state["w_image"] not in options:
        force("w_image", view.image)
    image_id = sb.selectbox(
        "Image",
        options,
        key="w_image",
        format_func=lambda k: labels.get(k, k),
        help="The gallery: photos, composites and an annotated photo (the quokka, with its outline) for "
        "ImageNet models, scenes (with exact object masks) for the scene models; or upload your own below.",
    )
    sample = next((s for s in samples if s.id == image_id), None)
    if sample is not None:
        sb.caption(sample.description)
    show_deferred_errors("image", sb)
    with sb.expander("Upload an image"):
        st.file_uploader(
            "Image file",
            type=["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"],
            key="w_image_upload",
            on_change=_on_image_upload,
        )
        st.caption(_NO_URL)
    return replace(view, image=image_id)


def _check_layers(view: ViewState, handle, messages: list[str]) -> ViewState:
    """The view's layer and layers checked against the model (a hand-edited link may name any):
    unknown ones are reported and replaced by the default, on every page. A view that names no
    layer needs no check: the model's layers are not probed for it (Home's first map)."""
    if view.layer is None and not view.layers:
        return view
    infos, default = cache.layer_infos(handle)
    names = [i.name for i in infos]
    if view.layer is not None and view.layer not in names:
        messages.append(
            f"Layer {view.layer!r} is not a layer of {view.model} with a spatial output."
            f"{suggest(view.layer, names)} Showing the default layer {default!r}."
        )
        view = replace(view, layer=None)
        force("w_layer", "")
    unknown = [l for l in view.layers if l not in names]
    if unknown:
        messages.append(
            f"{view.model} has no layer(s) {', '.join(map(repr, unknown))} with a spatial output; they are left out."
        )
        view = replace(view, layers=tuple(l for l in view.layers if l in names))
        st.session_state.pop("w_layers", None)
    return view


def _target_section(view: ViewState, messages: list[str]) -> ViewState:
    sb = st.sidebar
    sb.subheader("Target class")
    choice = model_fit.model_choice(view.model)
    if choice is not None and not choice.available:  # nothing to load: the page says how to get the weights
        sb.caption("The classes appear once the model's weights are on this machine (see the page).")
        return view
    if model_fit.model_task(view) != "classification":  # boxes or pixels: the page picks the object
        sb.caption("This model detects or segments: pick the object to explain on the Detection page.")
        return view
    # the page shows the library's full message; here a pointer is enough
    with shown_errors(
        container=sb,
        doing="predicting the classes",
        instead="No classes to choose: the model or the image could not be loaded (the message is on the page).",
    ) as outcome:
        handle = cache.model_handle(view.model)
        probs = cache.predictions(handle, view.image)
    if outcome.failed:
        return view
    with shown_errors(container=sb, doing="listing the classes"):
        view = _check_layers(view, handle, messages)
        names = handle.class_names
        order = [int(i) for i in np.argsort(-probs)]
        top = order[:_TOP_K]
        rest = sorted(order[_TOP_K:], key=lambda i: _cls(names, i).lower())
        options = [_AUTO] + top + rest

        def fmt(i: int) -> str:
            if i == _AUTO:
                return f"Top-1 prediction: {_cls(names, order[0])} ({probs[order[0]]:.1%})"
            rank = f"#{top.index(i) + 1} " if i in top else ""
            return f"{rank}{_cls(names, i)} ({probs[i]:.1%})"

        if view.target is not None and view.target not in options:
            messages.append(
                f"Target class {view.target} does not exist for {view.model} "
                f"({len(probs)} classes); explaining the top-1 class."
            )
            view = replace(view, target=None)
            force("w_target", _AUTO)
        seed("w_target", _AUTO if view.target is None else view.target)
        if st.session_state["w_target"] not in options:
            force("w_target", _AUTO)
        refresh_label("w_target", fmt(st.session_state["w_target"]))  # a new image: the new top-1 in this run
        target = sb.selectbox(
            "Explain the class",
            options,
            key="w_target",
            format_func=fmt,
            help="The top-5 predictions first (with probabilities), then every class by name.",
        )
        view = replace(view, target=None if target == _AUTO else int(target))
    if model_fit.domain_text(view):
        sb.caption(
            ":material/explore_off: Out of domain: this model was not trained on images like this one; "
            "its prediction means little here."
        )
    return view


def _percentiles(sb, label: str) -> tuple[float, float]:
    lo, hi = sb.slider(label, 0.0, 100.0, step=0.5, key="w_pct")
    if lo >= hi:
        sb.warning("The low percentile must be below the high one; using 1 and 99.")
        return 1.0, 99.0
    return float(lo), float(hi)


def _display_section(view: ViewState, page: str) -> ViewState:
    sb = st.sidebar
    sb.subheader("Display")
    for key, value in (
        ("w_cmap", view.cmap),
        ("w_alpha", float(view.alpha)),
        ("w_norm", view.norm),
        ("w_relu", view.relu),
        ("w_scope", view.scope),
        ("w_pct", (float(view.p_lo), float(view.p_hi))),
    ):
        seed(key, value)
    cmap = sb.selectbox("Colormap", list(services.COLORMAP_NAMES), key="w_cmap")
    alpha = sb.slider("Overlay opacity (alpha)", 0.0, 1.0, step=0.05, key="w_alpha")
    view = replace(view, cmap=cmap, alpha=float(alpha))
    if page == "normalization":  # that page shows every mode and both ReLU settings
        p_lo, p_hi = _percentiles(sb, "Percentiles (percentile mode)")
        return replace(view, p_lo=p_lo, p_hi=p_hi)
    norm = sb.selectbox(
        "Normalization",
        list(services.NORM_MODES),
        key="w_norm",
        format_func=_NORM_LABELS.get,
        help="raw: unchanged · min-max: (M − min)/(max − min) · max: M / max|M| keeps 0 at 0 · "
        "percentile: clip to the percentiles, then min-max",
    )
    relu = sb.checkbox("ReLU before scaling", key="w_relu")
    scope = sb.radio(
        "Scale",
        list(services.NORM_SCOPES),
        key="w_scope",
        horizontal=True,
        format_func=lambda s: "per map" if s == "per_map" else "shared",
        help="per map: each map on its own scale · shared: one scale for every map on the page, "
        "meaningful where the maps share units (the layers of one method)",
    )
    p_lo, p_hi = _percentiles(sb, "Percentiles") if norm == "percentile" else (view.p_lo, view.p_hi)
    return replace(view, norm=norm, relu=relu, scope=scope, p_lo=p_lo, p_hi=p_hi)


def _device_text(view: ViewState) -> str:
    """Where the view's model runs (its weights' device), and the machine's default device
    (``methods.runtime.default_device``: ``$GRADLENS_DEVICE``, else a CUDA GPU, else the CPU)
    when the session chose another one."""
    choice = model_fit.model_choice(view.model)
    loaded = choice is None or choice.available
    device = cache.model_handle(view.model).loaded.device if loaded else cache.session_device()
    text = f":material/memory: Models run on **{devices.label(device)}**"
    default = devices.default()
    if devices.label(device) != devices.label(default):
        text += f" (this machine's default device is {devices.label(default)})"
    return text + "."


def _cls(names: Sequence[str], i: int) -> str:
    return names[i] if 0 <= i < len(names) else f"class {i}"


def sidebar(view: ViewState, page: str) -> ViewState:
    """Draw the shared sidebar; return the view with the user's choices. Each section that fails
    says so in the sidebar and leaves the rest of the sidebar and the page to draw."""
    messages: list[str] = st.session_state.pop("_url_messages", [])
    for section, doing in (
        (_model_section, "drawing the model menu"),
        (_image_section, "drawing the image menu"),
        (_target_section, "drawing the class menu"),
    ):
        with shown_errors(container=st.sidebar, doing=doing):
            view = section(view, messages)
    with shown_errors(container=st.sidebar, doing="drawing the display options"):
        view = _display_section(view, page)
    with shown_errors(container=st.sidebar, doing="finding the device"):
        st.sidebar.caption(_device_text(view))
    st.sidebar.divider()
    st.sidebar.caption("The address bar holds this whole view: copy it to share it. " + _NO_URL)
    for message in messages:
        notice(message, "warning", icon=":material/link_off:")
    return view
