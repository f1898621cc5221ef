"""The gallery's annotated photo: the quokka is listed under its group and the Methods page
(Home) explains it on EfficientNet-Lite0 without an error."""

from __future__ import annotations

from app_kit import assert_clean, run_page
from dashboard.core import menus


def test_quokka_is_in_the_gallery_menu():
    choice = next(c for c in menus.sample_choices() if c.id == "quokka")
    assert choice.kind == "annotated" and choice.classes == ("wallaby",)
    assert choice.label == "Annotated photo · quokka: a quokka with its outline"
    assert menus.load_sample("quokka").shape == (643, 960, 3)


def test_home_explains_the_quokka():
    at = run_page(None, {"image": "quokka"}, model="efficientnet_lite0")
    assert_clean(at)
    assert at.sidebar.selectbox(key="w_image").value == "quokka"
    assert len(at.image) >= 4
