"""How a server shows where a passage comes from (`serve.show_paths`): by default as ingested
from the folder named, never as the server's absolute path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from rearag.agent.serving.worker import Event
from rearag.core.types import Answer, Passage

P = TypeVar("P", bound=Passage)


def relative_source(passage: P) -> P:
    """The passage with its source as ingested from the folder named (`path`), not the
    server's absolute path; the file name alone for chunks ingested before paths were kept."""
    meta = dict(passage.metadata)
    if meta.get("source"):
        meta["source"] = meta.get("path") or Path(meta["source"]).name
    return passage.model_copy(update={"metadata": meta})


def relative_sources(answer: Answer) -> Answer:
    return answer.model_copy(
        update={
            "citations": [relative_source(c) for c in answer.citations],
            "sources": [relative_source(p) for p in answer.sources],
        }
    )


def with_relative_sources(run: Callable[[], Iterator[Event]]) -> Callable[[], Iterator[Event]]:
    """The agent's events, with the answer's sources relative."""

    def relative() -> Iterator[Event]:
        for node, update in run():
            if node == "answer":
                update = {"answer": relative_sources(update["answer"])}
            yield node, update

    return relative
