"""How a server shows where a passage comes from (`serve.show_paths`): by default as ingested
from the folder named, never as the server's absolute path. The one rule for every way out of
a server: HTTP search and chat, and the MCP tools."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from rearag.agent.serving.worker import Event
from rearag.core.config import ServeConfig
from rearag.core.types import Answer, Passage

P = TypeVar("P", bound=Passage)


def relative_source(passage: P) -> P:
    """The passage with its source as ingested from the folder named (`path`), not the
    server's absolute path; the file name alone for chunks ingested before paths were kept.
    A file's `doc_id` is its source path, and goes the same way; a .jsonl record's is its own
    id, and stays."""
    meta = dict(passage.metadata)
    source = meta.get("source")
    if source:
        meta["source"] = meta.get("path") or Path(source).name
        if meta.get("doc_id") == source:
            meta["doc_id"] = meta["source"]
    return passage.model_copy(update={"metadata": meta})


def shown_passages(passages: list[P], cfg: ServeConfig) -> list[P]:
    """Search results as the server shows them (`serve.show_paths`)."""
    if cfg.show_paths != "relative":
        return passages
    return [relative_source(p) for p in passages]


def shown_answer(answer: Answer, cfg: ServeConfig) -> Answer:
    """An answer as the server shows it (`serve.show_paths`)."""
    return relative_sources(answer) if cfg.show_paths == "relative" else answer


def relative_sources(answer: Answer) -> Answer:
    return answer.model_copy(
        update={
            "citations": [relative_source(c) for c in answer.citations],
            "sources": [relative_source(p) for p in answer.sources],
        }
    )


def shown_events(
    run: Callable[[], Iterator[Event]], cfg: ServeConfig
) -> Callable[[], Iterator[Event]]:
    """The agent's events, with the answer as the server shows it (`shown_answer`)."""

    def shown() -> Iterator[Event]:
        for node, update in run():
            if node == "answer":
                update = {"answer": shown_answer(update["answer"], cfg)}
            yield node, update

    return shown
