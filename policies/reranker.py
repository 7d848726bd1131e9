"""The public reranking API, in the style of the `rerankers` library:

    ranked = Reranker(policy="rearag-reasoning", model="local:smollm2-135m-instruct").rank(
        "query", ["passage one", "passage two", ...])
    ranked.top_k(5)

Documents are strings (with optional `doc_ids` and `metadata`) or `Passage`s; every result
carries its document's id, text and metadata, so callers never re-join results by id.

A list longer than the window is reranked by a strategy (policies/strategies.py): a sliding
window from the back to the front (RankGPT, REARANK), top-down partitioning around a pivot
(TDPart), or one window over the head. The strategy plans rounds of independent windows; a
round's windows, and those of several queries (`rank_many`), go to the model together, so an
API model gets them concurrently and a local one as a batch. With `cache`, a window already
ranked by the same model with the same prompt is read from disk instead. A failed or
unparsable window keeps its input order and is counted; a rank call never raises on what a
model returns.
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
from rearag.core.types import Passage, Usage
from rearag.policies import strategies
from rearag.policies.parser import Status
from rearag.policies.policy import Policy
from rearag.policies.registry import get_policy
from rearag.policies.strategies import Plan, Window
from rearag.policies.window_cache import WindowCache, model_identity
from rearag.tools.backends import load_backend
from rearag.tools.llm import Completion, Likelihood, LLMBackend, Logits, TokenCounting
from rearag.tools.retriever import reciprocal_rank_fusion

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
    round: int = 1  # windows of one round ran together
    pivot: bool = False  # the window also showed the partition's pivot, first
    cached: bool = False  # read from the window cache, not sent to the model
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

    @property
    def usage(self) -> Usage:
        """The tokens the model read and wrote, summed over the windows."""
        return Usage(
            prompt_tokens=sum(w.prompt_tokens for w in self.windows),
            completion_tokens=sum(w.completion_tokens for w in self.windows),
        )


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
        self.rrf_k = settings.retriever.rrf_k
        if not self.config.use_model:
            self.policy = get_policy("first-stage")  # the first-stage order, unasked
        if self.policy.max_window and self.config.window > self.policy.max_window:
            raise ConfigError(
                f"policy {self.policy.name} reads at most {self.policy.max_window} passages a "
                f"window; set window to {self.policy.max_window} or fewer"
            )
        self.backend = backend
        if self.backend is None and self.policy.kind != "none":
            self.backend = load_backend(self.config, settings)
        self.cache = (
            WindowCache(settings.home / "cache" / "windows.sqlite") if self.config.cache else None
        )
        needs = {"logits": Logits, "likelihood": Likelihood}.get(self.policy.kind)
        if needs is not None and not isinstance(self.backend, needs):
            raise ConfigError(
                f"policy {self.policy.name} needs a local model (local:, hf:, policy:); "
                f"{self.config.model} cannot return {self.policy.kind} scores"
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
        """Rerank several queries; the windows of their current rounds go to the model
        together."""
        metas = metadata or [None] * len(requests)
        states = [
            _State.start(q, docs, ids, meta)
            for (q, docs, ids), meta in zip(requests, metas, strict=True)
        ]
        if self.policy.kind == "likelihood":
            self._rank_pointwise(states)
        else:
            self._rank_windows(states)
        if self.config.fuse_first_stage:
            for s in states:
                s.order = fused_with_input(s.order, self.rrf_k)
        return [s.finish(self.policy.name, self.config.model) for s in states]

    def _rank_windows(self, states: list[_State]) -> None:
        """Windows of each list, round after round as its strategy plans them."""
        cfg = self.config
        plans = {
            i: strategies.plan(cfg.strategy, s.order, cfg.window, cfg.step, cfg.pivot)
            for i, s in enumerate(states)
        }
        rounds = {i: _advance(p, None, states[i]) for i, p in plans.items()}
        number = 1
        while any(rounds.values()):
            jobs = [(states[i], w) for i, windows in rounds.items() for w in windows or []]
            answers = iter(self._run_windows(jobs, number))
            for i, windows in rounds.items():
                if windows:
                    ranked = []
                    for w in windows:
                        order, trace = next(answers)
                        ranked.append([w.docs[j] for j in order])
                        states[i].windows.append(trace)
                    rounds[i] = _advance(plans[i], ranked, states[i])
            number += 1

    def _rank_pointwise(self, states: list[_State]) -> None:
        """Every passage scored alone (no windows to slide: a passage's score does not depend
        on its neighbours); the list is sorted by score, ties in first-stage order."""
        began = time.perf_counter()
        jobs = [(s, i) for s in states for i in range(len(s.docs))]
        max_chars = self.config.max_passage_chars
        assert isinstance(self.backend, Likelihood)  # checked in __init__
        scores = iter(
            self.backend.answer_logprobs(
                [self.policy.passage_messages(s.docs[i], max_chars) for s, i in jobs],
                [self.policy.likelihood_reply(s.query) for s, _ in jobs],
            )
        )
        seconds = (time.perf_counter() - began) / max(1, len(states))
        for s in states:
            row = [next(scores) for _ in s.docs]
            s.order = sorted(range(len(row)), key=lambda i: -row[i])
            s.windows.append(WindowTrace(start=0, end=len(row), status="ok", seconds=seconds))

    def _run_windows(
        self, jobs: list[tuple[_State, Window]], number: int
    ) -> list[tuple[list[int], WindowTrace]]:
        """Per window: the new order of its passages (0-based) and what happened."""
        policy, began = self.policy, time.perf_counter()
        windows = [[s.docs[i] for i in w.docs] for s, w in jobs]

        def trace(w: Window, **fields: Any) -> WindowTrace:
            return WindowTrace(start=w.start, end=w.end, round=number, pivot=w.pivot, **fields)

        if policy.kind == "none":
            return [(list(range(len(w.docs))), trace(w, status="ok")) for _, w in jobs]
        prompts = [self._messages(s.query, w) for (s, _), w in zip(jobs, windows, strict=True)]
        out: list[tuple[list[int], WindowTrace]] = []
        if policy.kind == "logits":
            labels = [policy.labels(len(w)) for w in windows]
            assert isinstance(self.backend, Logits)  # checked in __init__
            scores = self.backend.next_token_logits(prompts, policy.assistant_prefix, labels)
            seconds = (time.perf_counter() - began) / len(jobs)
            for row, (_, w) in zip(scores, jobs, strict=True):
                order = sorted(range(len(row)), key=lambda i: -row[i])
                out.append((order, trace(w, status="ok", seconds=seconds)))
            return out
        completions, cached = self._complete(prompts)
        seconds = (time.perf_counter() - began) / max(1, len(jobs) - sum(cached))
        for c, hit, docs, (_, w) in zip(completions, cached, windows, jobs, strict=True):
            t = trace(
                w,
                status="ok",
                output=c.text,
                error=c.error,
                prompt_tokens=c.prompt_tokens,
                completion_tokens=c.completion_tokens,
                seconds=0.0 if hit else seconds,
                cached=hit,
            )
            if c.error:
                t.status = "backend_error"
                out.append((list(range(len(docs))), t))
                continue
            parsed = policy.parse(c.text, len(docs))
            t.status, t.reasoning = parsed.status, parsed.reasoning
            out.append((parsed.order, t))
        return out

    def _complete(self, prompts: list[list[dict[str, str]]]) -> tuple[list[Completion], list[bool]]:
        """The model's answer to each prompt, in one generate call (concurrent requests or a
        batch); with the cache, only the prompts it does not hold are sent."""
        stop = list(self.policy.stop) or None
        generation = {"max_new_tokens": self.max_new_tokens, "temperature": 0.0, "stop": stop}
        keys: list[str | None] = [None] * len(prompts)
        found: list[Completion | None] = [None] * len(prompts)
        if self.cache is not None:
            identity = model_identity(self.backend)
            keys = [WindowCache.key(identity, generation, p) for p in prompts]
            found = [self.cache.get(k) for k in keys]  # type: ignore[arg-type]
        missing = [i for i, c in enumerate(found) if c is None]
        if missing:
            fresh = self.backend.generate(  # type: ignore[union-attr]
                [prompts[i] for i in missing], self.max_new_tokens, 0.0, stop
            )
            for i, c in zip(missing, fresh, strict=True):
                found[i] = c
                if self.cache is not None:
                    self.cache.put(keys[i], c)  # type: ignore[arg-type]
        hits = [i not in missing for i in range(len(prompts))]
        return [c for c in found if c is not None], hits

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


def _advance(plan: Plan, ranked: list[list[int]] | None, state: _State) -> list[Window] | None:
    """The plan's next round of windows, or None once it has returned the final order (which
    becomes the state's order)."""
    try:
        return plan.send(ranked) if ranked is not None else next(plan)
    except StopIteration as done:
        state.order = done.value
        return None


def fused_with_input(order: list[int], k: int) -> list[int]:
    """`order` (indexes into the first-stage list) fused with the first-stage order by
    reciprocal rank fusion; ties keep the first-stage order."""
    rankings = [[str(i) for i in range(len(order))], [str(i) for i in order]]
    return [int(i) for i, _ in reciprocal_rank_fusion(rankings, k)]


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
