"""The body of `POST /v1/search`: `Retriever.search(query, k, mode, where)` over HTTP."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from rearag.agent.serving.request import ApiRequest, Count
from rearag.core.config import SearchMode
from rearag.core.filters import WHERE_HELP
from rearag.core.types import Passage


class SearchRequest(ApiRequest):
    query: str = Field(min_length=1, max_length=10_000)
    model: str | None = Field(None, description="collection; default: the first served")
    k: Count | None = Field(None, ge=1, le=100)
    mode: SearchMode | None = None
    where: dict[str, Any] | None = Field(None, description=WHERE_HELP)


class SearchResponse(BaseModel):
    model: str
    results: list[Passage]
