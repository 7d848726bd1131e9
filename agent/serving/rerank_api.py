"""The rerank API of `rearag serve`, in the shape Cohere (v1, v2) and Jina define, so their
SDKs, LiteLLM's `cohere/` provider and apps with an "external reranker" setting can use it.

    POST /v1/rerank, /v2/rerank
    {"model"?, "query", "documents": [str | {"text", ...}], "top_n"?, "return_documents"?,
     "rank_fields"?, "max_tokens_per_doc"?, "max_chunks_per_doc"?}
    → {"id", "results": [{"index", "relevance_score", "document"?}], "meta", "usage", "rearag"}

`model` selects nothing: a server has one reranker (the `[reranker]` settings), so any name is
accepted, and clients that require one can send whatever they were configured with.
Fields that would change the result are honoured or refused with a 400 naming them; fields
that do not (`priority`, unknown ones) are ignored, as the rest of the server does.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rearag.agent.serving.request import ApiRequest
from rearag.core.errors import InvalidInputError
from rearag.policies.reranker import RankedResults, WindowTrace

# Characters per token when cutting at `max_tokens_per_doc`: the usual English average. The
# reranker's own tokenizer is not at hand (an API model may have none here).
CHARS_PER_TOKEN = 4


class RerankRequest(ApiRequest):
    model_config = ConfigDict(extra="ignore")
    model: str | None = Field(None, description="any name: the server has one reranker")
    query: str = Field(min_length=1, max_length=10_000)
    documents: list[str | dict[str, Any]] = Field(
        description='strings or objects with a "text" field (other fields come back as given)'
    )
    top_n: int | None = Field(None, ge=1, description="results returned; default: all")
    return_documents: bool = Field(False, description="give each result its document")
    rank_fields: list[str] | None = Field(
        None, min_length=1, description="the fields of object documents the reranker reads"
    )
    max_tokens_per_doc: int | None = Field(
        None, ge=1, description=f"cut each document to about this ({CHARS_PER_TOKEN} chars a token)"
    )
    max_chunks_per_doc: int | None = Field(None, ge=1, description="only 1: no chunking")
    relevant_spans: dict[str, Any] | None = Field(None, description="not supported")

    def texts(self) -> list[str]:
        """What the reranker reads of each document. InvalidInputError, naming the field, for
        a request that cannot be answered as asked."""
        if not self.documents:
            raise InvalidInputError("documents is empty: send at least one document to rerank")
        if self.max_chunks_per_doc not in (None, 1):
            raise InvalidInputError(
                "max_chunks_per_doc: rearag does not split documents into chunks; the reranker "
                "reads the start of each (reranker.max_passage_chars): leave it out or send 1"
            )
        if (self.relevant_spans or {}).get("mode") == "enabled":
            raise InvalidInputError(
                "relevant_spans: rearag ranks whole documents and returns no spans; leave it out"
            )
        texts = [self._text(i, doc) for i, doc in enumerate(self.documents)]
        if self.max_tokens_per_doc:
            texts = [t[: self.max_tokens_per_doc * CHARS_PER_TOKEN] for t in texts]
        return texts

    def _text(self, i: int, doc: str | dict[str, Any]) -> str:
        if isinstance(doc, str):
            return doc  # rank_fields apply to object documents only, as in Cohere's API
        if not isinstance(doc.get("text"), str):
            raise InvalidInputError(
                f'documents[{i}] has no "text" string: send each document as a string '
                'or as {"text": ...}'
            )
        fields = self.rank_fields or ["text"]
        missing = [f for f in fields if f not in doc]
        if missing:
            raise InvalidInputError(f"documents[{i}] has no {missing[0]!r} field (rank_fields)")
        if len(fields) == 1:
            return str(doc[fields[0]])
        # Several fields: one "name: value" line each, in the order given (YAML-like, as
        # Cohere advises for structured documents).
        return "\n".join(f"{f}: {doc[f]}" for f in fields)


class RerankResult(BaseModel):
    index: int = Field(description="the document's position in the request's documents")
    relevance_score: float = Field(
        description="from the rank: 1 for the best of n documents, then 1/n less per place"
    )
    document: dict[str, Any] | None = Field(None, description="with return_documents")


class RerankExtras(BaseModel):
    """rearag's own data, which Cohere and Jina clients ignore."""

    policy: str
    model: str
    windows: list[WindowTrace] = Field(description="each window's status and reasoning")


class RerankResponse(BaseModel):
    id: str
    results: list[RerankResult]
    meta: dict[str, Any]
    usage: dict[str, int]  # Jina's name for the token count
    rearag: RerankExtras


def rerank_response(body: RerankRequest, ranked: RankedResults) -> RerankResponse:
    """`ranked`, the reranking of `body.texts()`, in the API's shape. The reranker orders; it
    does not score. A relevance score is asked for in [0, 1] and decreasing with rank, so it is
    (n - rank + 1) / n: an order, not a calibrated probability, comparable only within one
    response."""
    n = len(ranked.results)
    results = [
        RerankResult(
            index=r.original_rank - 1,
            relevance_score=(n - r.rank + 1) / n,
            document=_document(body.documents[r.original_rank - 1])
            if body.return_documents
            else None,
        )
        for r in ranked.top_k(body.top_n or n)
    ]
    usage = ranked.usage
    tokens = {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}
    return RerankResponse(
        id=str(uuid.uuid4()),
        results=results,
        meta={"tokens": tokens},
        usage={"total_tokens": usage.total_tokens},
        rearag=RerankExtras(policy=ranked.policy, model=ranked.model, windows=ranked.windows),
    )


def _document(doc: str | dict[str, Any]) -> dict[str, Any]:
    # Cohere v1 gives object documents back with all their fields.
    return {"text": doc} if isinstance(doc, str) else doc
