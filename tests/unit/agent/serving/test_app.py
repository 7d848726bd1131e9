"""The app's description and its routes, each served alone by an app that sets the state its
dependencies read (no agent is loaded)."""

from __future__ import annotations

from fakes.net import free_port
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rearag.agent.serving import app as app_module
from rearag.agent.serving.errors import add_error_handlers
from rearag.agent.serving.openai_api import ChatRequest
from rearag.agent.serving.registry import AgentRegistry
from rearag.agent.serving.routes import chat, models, page, responses, search
from rearag.agent.serving.search_api import SearchRequest
from rearag.agent.serving.worker import Conversations


def test_openapi_describes_the_responses_of_chat_search_and_rerank(settings, monkeypatch):
    monkeypatch.setattr(AgentRegistry, "warm_up", lambda self: None)
    paths = app_module.create_app(settings).openapi()["paths"]
    for path in ("/v1/chat/completions", "/v1/search", "/v1/rerank", "/v2/rerank"):
        ok = paths[path]["post"]["responses"]["200"]["content"]["application/json"]
        assert "$ref" in ok["schema"], path
    chat = paths["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert chat["application/json"]["schema"]["$ref"].endswith("/ChatCompletion")
    assert "text/event-stream" in chat


def served(settings, *routers) -> TestClient:
    app = FastAPI()
    app.state.registry = AgentRegistry(lambda: settings, served=["docs", "notes"])
    app.state.conversations = Conversations()
    add_error_handlers(app)
    for router in routers:
        app.include_router(router)
    return TestClient(app)


def test_the_models_route_alone_lists_the_served_collections(settings):
    client = served(settings, models.router)
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["docs", "notes"]
    missing = client.get("/v1/models/other")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


def test_health_is_served_by_the_page_router(settings):
    health = served(settings, page.router).get("/health").json()
    assert health["status"] == "ok" and health["models"] == ["docs", "notes"]
    assert health["auth"] is False and [p["shared"] for p in health["parts"]] == [False, False]


def test_health_is_503_naming_a_shared_part_that_does_not_answer(settings):
    # Postgres and a Chroma server where nothing listens: a load balancer takes this replica
    # out; the body says which part, without its address (/health needs no key).
    port = free_port()
    away = settings.model_copy(
        update={
            "agent": settings.agent.model_copy(
                update={"checkpointer": f"postgresql://u:secret@127.0.0.1:{port}/db"}
            ),
            "store": settings.store.model_copy(
                update={"chroma_host": "127.0.0.1", "chroma_port": port}
            ),
        }
    )
    resp = served(away, page.router).get("/health")
    assert resp.status_code == 503 and resp.json()["status"] == "unavailable"
    assert resp.json()["parts"] == [
        {"holds": "conversations", "shared": True, "reachable": False},
        {"holds": "chunks and vectors", "shared": True, "reachable": False},
    ]
    assert str(port) not in resp.text and "secret" not in resp.text


def test_a_boolean_is_no_count_but_a_whole_float_is(settings):
    # Schemathesis found `"k": true` searched with k=1: JSON's true is not a number.
    client = served(settings, search.router, chat.router, responses.router)
    for path, body in [
        ("/v1/search", {"query": "q", "k": True}),
        ("/v1/chat/completions", {"model": "docs", "messages": [], "max_tokens": True}),
        ("/v1/chat/completions", {"model": "docs", "messages": [], "n": True}),
        ("/v1/responses", {"model": "docs", "input": "q", "max_output_tokens": True}),
    ]:
        assert client.post(path, json=body).status_code == 422, (path, body)
    # A count written 256.0 (or "256") is still one, as before booleans were refused.
    request = ChatRequest(
        model="docs", messages=[{"role": "user", "content": "q"}], max_tokens=256.0
    )
    assert request.max_tokens == 256 and SearchRequest(query="q", k="3").k == 3
