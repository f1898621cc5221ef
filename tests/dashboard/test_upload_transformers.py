"""Transformers through the upload panel (issue 22): a timm ViT checkpoint with its architecture
from the menu, and a Hugging Face folder uploaded as its files (config.json, model.safetensors,
preprocessor_config.json) — safetensors only, no remote code, sizes bounded."""

from __future__ import annotations

import io
import json

import pytest
import torch

from app_kit import assert_clean, plain, plotly_specs, run_page, texts
from dashboard.app import uploads
from dashboard.core import services
from methods.errors import CheckpointError

transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")

NAMES = ("apple", "banana", "cherry")


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory) -> dict[str, bytes]:
    """A tiny random ViTForImageClassification as save_pretrained writes it (32 px, 4x4 patches of 8)."""
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, num_labels=3, id2label=dict(enumerate(NAMES)), label2id={n: i for i, n in enumerate(NAMES)},
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("hf_vit")
    transformers.ViTForImageClassification(config).eval().save_pretrained(folder, safe_serialization=True)
    processor = {
        "do_resize": True,
        "size": {"height": 32, "width": 32},
        "image_mean": [0.5] * 3,
        "image_std": [0.5] * 3,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _upload_hf(at, files: dict[str, bytes], name: str = ""):
    at.file_uploader(key="w_hf_files").set_value([(k, v, "application/octet-stream") for k, v in files.items()])
    if name:
        at.text_input(key="w_hf_name").set_value(name)
    at.run()
    return at.button(key="w_hf_load").click().run()


def test_timm_transformers_are_in_the_architecture_menu():
    archs = services.checkpoint_architectures()
    for arch in ("timm:vit_tiny_patch16_224", "timm:deit_tiny_patch16_224", "timm:swin_tiny_patch4_window7_224"):
        assert arch in archs


def test_a_hugging_face_folder_upload_is_explained_with_its_class_names(hf_folder):
    at = run_page()
    at = _upload_hf(at, hf_folder, name="tiny [vit]")
    assert_clean(at)
    model_id = at.selectbox(key="w_model").value
    assert model_id.startswith("upload:")
    held = at.session_state["_uploaded_models"][model_id]
    assert held["arch"] == "hf:ViTForImageClassification" and held["class_names"] == NAMES
    loaded = held["handle"].loaded
    assert tuple(loaded.input_size) == (32, 32) and loaded.default_layer == "vit.layers.1.layernorm_before"
    assert loaded.name == "hf:tiny [vit]" and "gradlens_hf_" not in loaded.note
    assert set(at.dataframe[0].value["Class"]) == set(NAMES)
    # the same model, uploaded again, is the same entry (no second copy held)
    at = _upload_hf(at, hf_folder)
    assert list(at.session_state["_uploaded_models"]) == [model_id]
    at.switch_page(_methods_script()).run()
    at.multiselect(key="w_methods").set_value(["gradcam", "rollout"]).run()
    assert_clean(at)
    (spec,) = plotly_specs(at)
    titles = json.dumps(spec["layout"].get("annotations", []))
    assert "Grad-CAM" in titles and "rollout" in titles.lower()
    assert "does not apply" not in texts(at.info)


def _methods_script() -> str:
    from app_kit import PAGES

    return PAGES["methods"]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda f: {**f, "tokenizer.json": b"{}"}, "'tokenizer.json' is not a file"),
        (lambda f: {k: v for k, v in f.items() if k != "model.safetensors"}, "lacks model.safetensors"),
        (lambda f: {**f, "config.json": b"{" + b" " * 1_000_001 + b"}"}, "more than the 1 MB allowed"),
        (
            lambda f: {
                **f,
                "config.json": json.dumps({**json.loads(f["config.json"]), "auto_map": {"x": "y.Z"}}).encode(),
            },
            "auto_map",
        ),
    ],
    ids=["other-file", "no-weights", "too-big", "remote-code"],
)
def test_a_bad_hugging_face_folder_is_refused_with_a_reason(hf_folder, change, said):
    at = _upload_hf(run_page(), change(hf_folder))
    assert not at.exception
    (error,) = at.sidebar.error
    assert said in plain(error.value), error.value
    assert at.selectbox(key="w_model").value == "scenes_vgg"


def test_folder_paths_are_read_by_their_file_name_and_a_pickle_is_refused(hf_folder):
    got = uploads._hf_files([(f"my_vit/{k}", v) for k, v in hf_folder.items()])
    assert set(got) == set(hf_folder)
    with pytest.raises(CheckpointError, match=r"'pytorch_model.bin' is not a file .*safetensors weights"):
        uploads._hf_files([*hf_folder.items(), ("pytorch_model.bin", b"x")])  # the uploader refuses .bin too


def test_a_timm_vit_checkpoint_upload_draws_its_blocks():
    torch.manual_seed(0)
    full = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=3)
    buf = io.BytesIO()
    torch.save(full.state_dict(), buf)
    at = run_page()
    at.file_uploader(key="w_ckpt_file").set_value(("vit.pt", buf.getvalue(), "application/octet-stream"))
    at.selectbox(key="w_ckpt_arch").set_value("timm:vit_tiny_patch16_224")
    at.number_input(key="w_ckpt_classes").set_value(3)
    at.run()
    at.button(key="w_ckpt_load").click().run()
    assert_clean(at)
    model_id = at.selectbox(key="w_model").value
    assert model_id.startswith("upload:")
    assert at.session_state["_uploaded_models"][model_id]["handle"].loaded.default_layer == "blocks.11.norm1"
