"""The agents registry's rules, shared by HTTP and MCP, checked without loading a model."""

from __future__ import annotations

import pytest

from rearag.agent.serving.registry import AgentRegistry
from rearag.core.errors import ModelNotServed, NotFoundError, TooManyDocuments


def test_a_server_answers_only_for_the_collections_it_serves(settings):
    agents = AgentRegistry(lambda: settings, served=["docs", "notes", "docs"])
    assert agents.served == ["docs", "notes"] and agents.default == "docs"
    with pytest.raises(ModelNotServed, match="model 'other' is not served here: use one of docs"):
        agents.agent("other")


def test_without_a_served_list_a_missing_collection_names_the_existing_ones(settings):
    agents = AgentRegistry(lambda: settings)
    assert agents.default == settings.collection
    with pytest.raises(NotFoundError, match=r"collection 'nope' does not exist; available: none"):
        agents.agent("nope")


def test_the_rerank_limit_is_the_same_for_every_way_of_serving(settings):
    limit = settings.serve.max_documents
    agents = AgentRegistry(lambda: settings)
    agents.check_documents("q", ["d"] * limit)
    with pytest.raises(TooManyDocuments, match=rf"{limit + 1} documents; the limit is {limit}"):
        agents.check_documents("q", ["d"] * (limit + 1))
    # MCP over stdio has no body limit: a 5 MB document was accepted and echoed back whole.
    big = "x" * (settings.serve.max_body_bytes + 1)
    with pytest.raises(TooManyDocuments, match=r"bytes; the limit is \d+ \(serve.max_body_bytes\)"):
        agents.check_documents("q", [big])


def test_settings_are_read_on_first_use_and_again_after_a_failure(settings):
    calls = []

    def load():
        calls.append(1)
        if len(calls) == 1:
            raise NotFoundError("not yet")
        return settings

    agents = AgentRegistry(load)
    assert calls == []
    with pytest.raises(NotFoundError):
        agents.settings  # noqa: B018
    assert agents.settings is settings and agents.settings is settings and len(calls) == 2


def test_an_empty_model_name_is_not_a_served_collection(settings):
    # None means "the default"; a name, even "", must be one served.
    with pytest.raises(ModelNotServed, match="model '' is not served here"):
        AgentRegistry(lambda: settings, served=["docs"]).agent("")
