"""`rearag serve`'s app: the agent over HTTP (FastAPI), OpenAI-compatible.

    POST /v1/chat/completions   the agent, streamed (SSE) or not; `model` = a served collection
    POST /v1/responses          the same, in the Responses API shape: citations as annotations
    POST /v1/search             Retriever.search
    POST /v1/rerank, /v2/rerank Reranker.rank, in the Cohere and Jina shape
    GET  /v1/models[/{id}], /health, /docs, and / (the chat page in web/)

The factory only assembles: the routes are in `routes/`, what they receive in `deps`, every
error's status in `errors`. Logs name routes, statuses and exception classes, never the text
of questions, documents or keys.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Security
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles

from rearag import __version__
from rearag.agent.serving import errors
from rearag.agent.serving.access import KeyRing
from rearag.agent.serving.middleware import BearerAuth, BodyLimit
from rearag.agent.serving.registry import AgentRegistry
from rearag.agent.serving.routes import chat, models, page, rerank, responses, search
from rearag.agent.serving.worker import Conversations
from rearag.core.config import Settings


def create_app(settings: Settings, collections: list[str] | None = None) -> FastAPI:
    """The app, with one agent per collection (each is a `model`), loaded now: a missing
    collection raises RearagError here, before the server starts."""
    registry = AgentRegistry(lambda: settings, served=collections or [settings.collection])
    cfg = settings.serve
    keys = KeyRing.from_config(cfg, registry.served or [])  # a bad key stops it before loading
    registry.warm_up()
    app = FastAPI(
        title="rearag",
        version=__version__,
        summary="Agentic RAG with a reasoning reranker, OpenAI-compatible.",
    )
    app.state.registry = registry
    app.state.keys = keys
    app.state.conversations = Conversations()
    app.add_middleware(BodyLimit, limit=cfg.max_body_bytes)
    if keys:
        app.add_middleware(BearerAuth, keys=keys)  # added last: runs first
    errors.add_error_handlers(app)
    # With keys, every API route declares Bearer auth, so the docs page offers Authorize; the
    # check itself is BearerAuth's, before a route runs. The page and /health are public.
    api = APIRouter(
        dependencies=[Security(HTTPBearer(auto_error=False))] if keys else None,
        responses=errors.responses(401) if keys else None,
    )
    for resource in (models, chat, responses, search, rerank):
        api.include_router(resource.router)
    app.include_router(page.router)
    app.include_router(api)
    app.mount("/static", StaticFiles(directory=page.WEB), name="static")
    return app
