"""End-to-end scenarios: every test here is `slow` (servers, subprocesses, the real embedder
and models, training runs). The `api` fixture is shared by the agent and serving scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.openai_server import Script, serve

from rearag.core.config import load_settings
from rearag.tools.ingest import ingest
from rearag.tools.store import Store

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def api(home, docs):
    """A collection over the docs fixture, and settings sending every LLM node to the server."""
    script = Script()
    httpd, base = serve(script)
    llm = {"model": "litellm:openai/scripted", "api_base": base, "max_retries": 0}
    overrides = {
        f"{node}.{k}": v
        for node in ("rewriter", "grader", "generator", "reranker")
        for k, v in llm.items()
    }
    settings = load_settings(collection="agent-docs", **overrides, **{"reranker.policy": "rankgpt"})
    ingest([docs], Store(settings, "agent-docs", create=True), progress=False)
    yield script, settings
    httpd.shutdown()
