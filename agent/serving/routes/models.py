"""`GET /v1/models[/{id}]`: the served collections, each an OpenAI model."""

from __future__ import annotations

from fastapi import APIRouter

from rearag.agent.serving.deps import Access, Agents
from rearag.agent.serving.errors import responses
from rearag.agent.serving.openai_api import ModelCard, ModelList

router = APIRouter()


@router.get("/v1/models")
async def models(agents: Agents, access: Access) -> ModelList:
    """The collections served here that this key sees."""
    return ModelList(data=[ModelCard(id=name) for name in access.visible(agents.served or [])])


@router.get("/v1/models/{model_id}", responses=responses(404))
async def model(model_id: str, agents: Agents, access: Access) -> ModelCard:
    access.collection(model_id, agents)  # 404 for a collection not served here or not seen
    return ModelCard(id=model_id)
