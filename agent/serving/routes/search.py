"""`POST /v1/search`: `Retriever.search` over a served collection."""

from __future__ import annotations

import functools

from fastapi import APIRouter

from rearag.agent.serving.deps import Access, Agents, Serve
from rearag.agent.serving.errors import responses
from rearag.agent.serving.paths import shown_passages
from rearag.agent.serving.search_api import SearchRequest, SearchResponse
from rearag.agent.serving.worker import blocking
from rearag.core.filters import Where

router = APIRouter()


@router.post("/v1/search", responses=responses(400, 404, 413, 422, 500, 502, 504))
async def search(body: SearchRequest, agents: Agents, cfg: Serve, access: Access) -> SearchResponse:
    """Search a collection: `Retriever.search(query, k, mode, where)`; a key's own filter
    holds too."""
    where = access.filter(Where.parse(body.where))  # a malformed filter: 400 before any work
    name = access.collection(body.model, agents)
    agent = agents.agent(name).value
    find = functools.partial(agent.tools.retriever.search, body.query, body.k, body.mode, where)
    hits = await blocking("search", cfg.request_timeout_s, find)
    return SearchResponse(model=name, results=shown_passages(hits, cfg))
