"""methods/models/sources: the catalog asks one registered ModelSource per kind of model."""

from __future__ import annotations

import pytest

from methods.errors import OptionError
from methods.models import catalog
from methods.models.sources.base import ModelSource, model_sources, register_source, source_for


def test_one_source_per_kind_in_menu_order():
    sources = model_sources()
    assert [s.kind for s in sources] == ["bundled", "pypi", "torchvision", "huggingface"]
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
    assert [s.kind for s in model_sources()] == ["bundled", "pypi", "torchvision", "huggingface"]
