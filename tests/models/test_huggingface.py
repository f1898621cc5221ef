"""Hugging Face image classifiers: a local folder and a hub id fetched from a loopback hub."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tests.loopback_kit import block_network, hub_server

from methods.errors import CheckpointError, WeightsNotAvailableError
from methods.models import load_model
from methods.models.huggingface import hf_preprocessing, load_huggingface

transformers = pytest.importorskip("transformers")

PROCESSOR = {
    "do_resize": True,
    "size": {"height": 32, "width": 32},
    "image_mean": [0.5, 0.4, 0.3],
    "image_std": [0.2, 0.25, 0.3],
    "do_normalize": True,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
}


def _vit():
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
        id2label={0: "cat", 1: "dog", 2: "<b>fox</b>"},
        label2id={"cat": 0, "dog": 1, "<b>fox</b>": 2},
    )
    return transformers.ViTForImageClassification(config).eval()


@pytest.fixture()
def folder(tmp_path):
    model = _vit()
    model.save_pretrained(tmp_path / "tiny-vit")
    (tmp_path / "tiny-vit" / "preprocessor_config.json").write_text(json.dumps(PROCESSOR))
    return tmp_path / "tiny-vit", model


def test_local_folder_gives_a_loaded_model_with_labels_and_preprocessing(folder):
    path, model = folder
    loaded = load_model(f"hf:{path}")
    assert loaded.source == "huggingface" and loaded.name == "hf:tiny-vit"
    assert loaded.class_names == ("cat", "dog", "<b>fox</b>")
    assert loaded.input_size == (32, 32) and loaded.mean == (0.5, 0.4, 0.3) and loaded.std == (0.2, 0.25, 0.3)
    assert loaded.default_layer == "vit.layers.1.layernorm_before"
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    x = loaded.preprocess(image)[None]  # (1, 3, 32, 32)
    assert torch.equal(loaded.model(x), model(x).logits)  # same weights; the view returns the logits


def test_explain_a_transformers_model_without_user_code(folder):
    import methods

    path, model = folder
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    exp = methods.explain(model, x, "gradcam", target=1)  # the raw PreTrainedModel: logits read automatically
    assert exp.layers == ("vit.layers.1.layernorm_before",) and exp.maps[exp.layers[0]].shape == (2, 4, 4)
    assert torch.equal(exp.logits, model(x).logits.detach())
    # the same map by hand: gradients of the class-1 logit at the recorded tokens, class token dropped
    acts = {}
    handle = model.vit.layers[1].layernorm_before.register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    try:
        score = model(x).logits[:, 1].sum()
    finally:
        handle.remove()
    grads = torch.autograd.grad(score, acts["a"])[0]
    a, g = acts["a"][:, 1:].detach(), grads[:, 1:]  # (2, 16, 16)
    ref = (a * g.mean(dim=1, keepdim=True)).sum(dim=2).view(2, 4, 4)  # raw (signed) Grad-CAM
    assert torch.allclose(exp.maps[exp.layers[0]], ref, atol=1e-6)


def test_hub_id_downloads_from_hf_endpoint_on_loopback(folder, tmp_path, monkeypatch):
    path, model = folder
    files = {p.name: p.read_bytes() for p in path.iterdir()}
    refused = block_network(monkeypatch)
    with hub_server(files) as hub:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{hub.server_address[1]}")
        with pytest.raises(WeightsNotAvailableError, match="allow_download=True"):
            load_huggingface("owner/tiny-vit")
        loaded = load_huggingface("hf:owner/tiny-vit", allow_download=True, cache_dir=tmp_path / "cache")
    assert loaded.name == "hf:owner/tiny-vit" and loaded.class_names[2] == "<b>fox</b>"
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded.model(x), model(x).logits)
    assert "GET /owner/tiny-vit/resolve/main/model.safetensors" in hub.requests
    # every file came from the loopback hub; the one other attempt huggingface_hub 2.4 may make is
    # its User-Agent's agent-registry lookup at its IMPORT-time endpoint (it fails quietly here)
    assert set(refused) <= {"getaddrinfo huggingface.co"}


def test_hub_without_processor_config_falls_back_and_a_missing_weight_file_is_refused(folder, tmp_path, monkeypatch):
    path, _ = folder
    files = {p.name: p.read_bytes() for p in path.iterdir() if p.name != "preprocessor_config.json"}
    block_network(monkeypatch)
    with hub_server(files) as hub:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{hub.server_address[1]}")
        loaded = load_huggingface("owner/a", allow_download=True, cache_dir=tmp_path / "c1")
        assert loaded.input_size == (32, 32) and loaded.mean == (0.485, 0.456, 0.406)
        del hub.files["model.safetensors"]
        with pytest.raises(WeightsNotAvailableError, match="model.safetensors could not be downloaded"):
            load_huggingface("owner/b", allow_download=True, cache_dir=tmp_path / "c2")


def test_pickle_weights_and_remote_code_are_refused(folder):
    path, _ = folder
    (path / "model.safetensors").rename(path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="safetensors only"):
        load_huggingface(path)
    (path / "pytorch_model.bin").rename(path / "model.safetensors")
    config = json.loads((path / "config.json").read_text())
    config["auto_map"] = {"AutoModelForImageClassification": "modeling.Evil"}
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="trust_remote_code"):
        load_huggingface(path)


def test_processor_rules():
    crop = {"do_center_crop": True, "crop_size": {"height": 224, "width": 224}, "size": {"shortest_edge": 256}}
    assert hf_preprocessing(crop, 518)[0] == (224, 224)
    assert hf_preprocessing({"size": {"shortest_edge": 256}}, 224)[0] == (256, 256)
    assert hf_preprocessing({"do_normalize": False}, 64)[1:] == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    with pytest.raises(CheckpointError, match="1/255"):
        hf_preprocessing({"rescale_factor": 1 / 127.5}, 64)
