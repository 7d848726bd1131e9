"""`POST /v1/rerank` and `/v2/rerank`: the configured reranker policy in the Cohere and Jina
rerank shape (the cohere SDK's Client calls v1, its ClientV2 and LiteLLM's cohere/ call v2)."""

from __future__ import annotations

import functools

from fastapi import APIRouter

from rearag.agent.serving.deps import Agents, Serve
from rearag.agent.serving.errors import responses
from rearag.agent.serving.rerank_api import RerankRequest, RerankResponse, rerank_response
from rearag.agent.serving.worker import blocking

router = APIRouter()
# exclude_none: a result without its document has no "document" key, as clients expect.
_ROUTE = {"response_model_exclude_none": True, "responses": responses(400, 413, 422, 500, 502, 504)}


@router.post("/v1/rerank", **_ROUTE)
@router.post("/v2/rerank", **_ROUTE)
async def rerank(body: RerankRequest, agents: Agents, cfg: Serve) -> RerankResponse:
    """Rerank documents with the configured policy (`Reranker.rank`), in the Cohere and
    Jina rerank shape; `model` may be any name."""
    texts = body.texts()
    agents.check_documents(body.query, texts)
    reranker = agents.reranker().value
    ranked = await blocking(
        "rerank", cfg.request_timeout_s, functools.partial(reranker.rank, body.query, texts)
    )
    return rerank_response(body, ranked)
