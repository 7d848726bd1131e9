"""The public reranking API, in the style of the `rerankers` library:

    ranked = Reranker(policy="rearag-reasoning", model="local:smollm2-135m-instruct").rank(
        "query", ["passage one", "passage two", ...])
    ranked.top_k(5)

Documents are strings (with optional `doc_ids` and `metadata`) or `Passage`s; every result
carries its document's id, text and metadata, so callers never re-join results by id.

A list longer than the window is reranked with a sliding window from the back to the front
(RankGPT), so the best passages bubble up to the first window. Windows of several queries go
to the model together (`rank_many`). A failed or unparsable window keeps its input order and
is counted; a rank call never raises on what a model returns.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from rearag.core.config import RerankerConfig, SearchMode, Settings, first_error, load_settings
from rearag.core.errors import ConfigError, InvalidInputError
from rearag.core.types import Passage
from rearag.policies.parser import Status
from rearag.policies.policy import Policy
from rearag.policies.registry import get_policy
from rearag.tools.backends import load_backend
from rearag.tools.llm import LLMBackend, Logits, TokenCounting

if TYPE_CHECKING:
    from rearag.tools.retriever import Retriever

Document = str | bytes | Passage
# (query, documents, doc_ids or None): one query's reranking request for `rank_many`.
Request = tuple[str, Sequence[Document], Sequence[str] | None]

WindowStatus = Status | Literal["backend_error"]


class WindowTrace(BaseModel):
    start: int  # positions in the list as it was when the window ran
    end: int
    status: WindowStatus
    reasoning: str = ""
    output: str = ""
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class Result(BaseModel):
    doc_id: str
    text: str
    metadata: dict[str, Any] = {}  # as given with the document (source, title, …)
    original_rank: int  # 1-based, first-stage order
    rank: int  # 1-based, after reranking
    score: float  # strictly decreasing with rank

    def passage(self) -> Passage:
        """The result as the passage it was given as, scored by its new rank."""
        return Passage(id=self.doc_id, text=self.text, metadata=self.metadata, score=self.score)


class RankedResults(BaseModel):
    query: str
    policy: str
    model: str
    results: list[Result]
    windows: list[WindowTrace]

    def top_k(self, k: int) -> list[Result]:
        return self.results[:k]

    @property
    def status_counts(self) -> dict[str, int]:
        return dict(Counter(w.status for w in self.windows))


def window_spans(n: int, window: int, step: int) -> list[tuple[int, int]]:
    """[start, end) spans from the back of the list to the front; one span when n <= window."""
    if n <= 1:
        return []
    if n <= window:
        return [(0, n)]
    spans = []
    end = n
    while True:
        start = max(0, end - window)
        spans.append((start, end))
        if start == 0:
            return spans
        end -= step


class Reranker:
    def __init__(
        self,
        policy: str | None = None,
        model: str | None = None,
        *,
        settings: Settings | None = None,
        backend: LLMBackend | None = None,
        **options: Any,
    ) -> None:
        """`options` override `[reranker]` settings (window, step, api_base, …). Without
        `settings`, the defaults are read with `load_settings()` (./rearag.toml, REARAG_*)."""
        settings = settings or load_settings()
        fields = {
            k: v for k, v in {"policy": policy, "model": model, **options}.items() if v is not None
        }
        try:
            # Only what the settings set: the rest are defaults of the (maybe other) model.
            given = settings.reranker.model_dump(exclude_unset=True)
            self.config = RerankerConfig(**{**given, **fields})
        except ValidationError as exc:
            raise ConfigError(f"invalid reranker option: {first_error(exc)}") from None
        self.policy: Policy = get_policy(self.config.policy)
        if self.policy.max_window and self.config.window > self.policy.max_window:
            raise ConfigError(
                f"policy {self.policy.name} reads at most {self.policy.max_window} passages a "
                f"window; set window to {self.policy.max_window} or fewer"
            )
        self.backend = backend
        if self.backend is None and self.policy.kind != "none":
            self.backend = load_backend(self.config, settings)
        if self.policy.kind == "logits" and not isinstance(self.backend, Logits):
            raise ConfigError(
                f"policy {self.policy.name} needs a local model (local:, hf:, policy:); "
                f"{self.config.model} cannot return logits"
            )

    @property
    def max_new_tokens(self) -> int:
        return self.config.max_new_tokens or self.policy.max_new_tokens

    def rank(
        self,
        query: str,
        docs: Sequence[Document],
        doc_ids: Sequence[str] | None = None,
        metadata: Sequence[dict[str, Any]] | None = None,
    ) -> RankedResults:
        """`docs` best first after reranking. Ids and metadata come from `Passage` documents,
        else from `doc_ids` (default: positions "0", "1", …) and `metadata`."""
        return self.rank_many([(query, docs, doc_ids)], [metadata])[0]

    def rank_search(
        self,
        query: str,
        retriever: Retriever,
        *,
        mode: SearchMode | str = SearchMode.hybrid,
        depth: int | None = None,
    ) -> RankedResults:
        """Search with `retriever` for `depth` candidates (default: the `depth` setting),
        then rerank them."""
        depth = self.config.depth if depth is None else depth
        return self.rank(query, retriever.search(query, k=depth, mode=mode))

    async def arank(
        self,
        query: str,
        docs: Sequence[Document],
        doc_ids: Sequence[str] | None = None,
        metadata: Sequence[dict[str, Any]] | None = None,
    ) -> RankedResults:
        return await asyncio.to_thread(self.rank, query, docs, doc_ids, metadata)

    def rank_many(
        self,
        requests: Sequence[Request],
        metadata: Sequence[Sequence[dict[str, Any]] | None] | None = None,
    ) -> list[RankedResults]:
        """Rerank several queries; their k-th windows go to the model as one batch."""
        metas = metadata or [None] * len(requests)
        states = [
            _State.start(q, docs, ids, meta)
            for (q, docs, ids), meta in zip(requests, metas, strict=True)
        ]
        plans = [window_spans(len(s.docs), self.config.window, self.config.step) for s in states]
        for step in range(max((len(p) for p in plans), default=0)):
            jobs = [(s, p[step]) for s, p in zip(states, plans, strict=True) if step < len(p)]
            for (state, span), (order, trace) in zip(jobs, self._run_windows(jobs), strict=True):
                start, end = span
                state.order[start:end] = [state.order[start + i] for i in order]
                state.windows.append(trace)
        return [s.finish(self.policy.name, self.config.model) for s in states]

    def _run_windows(
        self, jobs: list[tuple[_State, tuple[int, int]]]
    ) -> list[tuple[list[int], WindowTrace]]:
        """Per window: the new order of its positions (0-based) and what happened."""
        policy, began = self.policy, time.perf_counter()
        windows = [[s.docs[i] for i in s.order[a:b]] for s, (a, b) in jobs]
        if policy.kind == "none":
            return [
                (list(range(len(w))), WindowTrace(start=a, end=b, status="ok"))
                for w, (_, (a, b)) in zip(windows, jobs, strict=True)
            ]
        prompts = [self._messages(s.query, w) for (s, _), w in zip(jobs, windows, strict=True)]
        out: list[tuple[list[int], WindowTrace]] = []
        if policy.kind == "logits":
            labels = [policy.labels(len(w)) for w in windows]
            assert isinstance(self.backend, Logits)  # checked in __init__
            scores = self.backend.next_token_logits(prompts, policy.assistant_prefix, labels)
            seconds = (time.perf_counter() - began) / len(jobs)
            for row, (_, (a, b)) in zip(scores, jobs, strict=True):
                order = sorted(range(len(row)), key=lambda i: -row[i])
                out.append((order, WindowTrace(start=a, end=b, status="ok", seconds=seconds)))
            return out
        completions = self.backend.generate(  # type: ignore[union-attr]
            prompts, self.max_new_tokens, 0.0, list(policy.stop) or None
        )
        seconds = (time.perf_counter() - began) / len(jobs)
        for c, w, (_, (a, b)) in zip(completions, windows, jobs, strict=True):
            trace = WindowTrace(
                start=a,
                end=b,
                status="ok",
                output=c.text,
                error=c.error,
                prompt_tokens=c.prompt_tokens,
                completion_tokens=c.completion_tokens,
                seconds=seconds,
            )
            if c.error:
                trace.status = "backend_error"
                out.append((list(range(len(w))), trace))
                continue
            parsed = policy.parse(c.text, len(w))
            trace.status, trace.reasoning = parsed.status, parsed.reasoning
            out.append((parsed.order, trace))
        return out

    def _messages(self, query: str, passages: list[str]) -> list[dict[str, str]]:
        """The window's prompt, passages shortened until it fits the model's context."""
        max_chars = self.config.max_passage_chars
        messages = self.policy.messages(query, passages, max_chars)
        if not isinstance(self.backend, TokenCounting):
            return messages
        budget = self.backend.context_length - self.max_new_tokens
        while self.backend.count_tokens(messages) > budget and max_chars > 20:
            max_chars = max(20, max_chars * 2 // 3)
            messages = self.policy.messages(query, passages, max_chars)
        return messages


class _State(BaseModel):
    query: str
    docs: list[str]
    ids: list[str]
    metas: list[dict[str, Any]]
    order: list[int]  # current ranking as indexes into docs
    windows: list[WindowTrace] = []

    @classmethod
    def start(
        cls,
        query: str,
        docs: Sequence[Document],
        ids: Sequence[str] | None,
        metas: Sequence[dict[str, Any]] | None,
    ) -> _State:
        for name, given in (("doc_ids", ids), ("metadata", metas)):
            if given is not None and len(given) != len(docs):
                raise InvalidInputError(
                    f"got {len(docs)} docs but {len(given)} {name}: pass one per doc"
                )
        if not query.strip():
            raise InvalidInputError(
                "the query is empty: give the question the passages should answer"
            )
        texts, found_ids, found_metas = [], [], []
        for i, doc in enumerate(docs):
            if isinstance(doc, Passage):
                texts.append(doc.text)
                found_ids.append(doc.id)
                found_metas.append(doc.metadata)
                continue
            texts.append(doc.decode("utf-8", "replace") if isinstance(doc, bytes) else str(doc))
            found_ids.append(str(i))
            found_metas.append({})
        return cls(
            query=query,
            docs=texts,
            ids=[str(i) for i in ids] if ids is not None else found_ids,
            metas=[dict(m) for m in metas] if metas is not None else found_metas,
            order=list(range(len(docs))),
        )

    def finish(self, policy: str, model: str) -> RankedResults:
        n = len(self.order)
        results = [
            Result(
                doc_id=self.ids[i],
                text=self.docs[i],
                metadata=self.metas[i],
                original_rank=i + 1,
                rank=r + 1,
                score=float(n - r),
            )
            for r, i in enumerate(self.order)
        ]
        return RankedResults(
            query=self.query, policy=policy, model=model, results=results, windows=self.windows
        )
