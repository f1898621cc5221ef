"""methods/models/sources: the catalog asks one registered ModelSource per kind of model."""

from __future__ import annotations

import pytest

from methods.errors import OptionError
from methods.models import catalog
from methods.models.sources.base import ModelSource, model_sources, register_source, source_for


def test_one_source_per_kind_in_menu_order():
    sources = model_sources()
    assert [s.kind for s in sources] == ["bundled", "pypi", "torchvision", "huggingface", "user"]
    assert all(isinstance(s, ModelSource) for s in sources)
    names = [n for s in sources for n in s.names()]
    assert len(names) == len(set(names)) and names == catalog.model_names()


def test_every_name_has_exactly_one_owner_and_the_catalog_dispatches_to_it():
    for name in catalog.model_names():
        owners = [s.kind for s in model_sources() if s.owns(name)]
        assert len(owners) == 1 and source_for(name).kind == owners[0]
        assert catalog.weights_file(name) == source_for(name).weights_file(name)
    entries = catalog.list_models()
    assert [e.name for e in entries] == catalog.model_names()
    assert all(e.source == source_for(e.name).kind for e in entries)
    assert source_for("no_such_model") is None


def test_a_second_source_of_a_kind_or_a_taken_name_is_refused():
    class Again:
        kind = "bundled"

        def names(self):
            return []

    class Thief:
        kind = "thief"

        def names(self):
            return ["scenes_vgg"]

    with pytest.raises(OptionError, match="registered already"):
        register_source(Again())
    with pytest.raises(OptionError, match="belong to another source"):
        register_source(Thief())
    assert [s.kind for s in model_sources()] == ["bundled", "pypi", "torchvision", "huggingface", "user"]


def test_a_registered_user_model_is_listed_loaded_and_removable(tmp_path):
    import torch
    import torchvision

    from methods.models.sources.user import USER_MODELS, register_model
    from methods.models.user_models import ModelRef

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), tmp_path / "w.pt")
    ref = ModelRef("checkpoint", str(tmp_path / "w.pt"), "resnet18")
    try:
        register_model("my_resnet", ref)
        assert catalog.model_names()[-1] == "my_resnet" and source_for("my_resnet").kind == "user"
        assert catalog.list_models()[-1].source == "user" and catalog.weights_file("my_resnet") == tmp_path / "w.pt"
        assert catalog.load_model("my_resnet").class_names == ("class 0", "class 1")
        with pytest.raises(OptionError, match="belongs to the bundled models"):
            register_model("scenes_vgg", ref)
        with pytest.raises(OptionError, match="registered already"):
            register_model("my_resnet", ModelRef("factory", "m:f"))
    finally:
        USER_MODELS.pop("my_resnet", None)
