"""rearag as a LangChain tool, for any LangChain or LangGraph agent:

from rearag import as_tool
tool = as_tool(collection="mydocs")
agent = create_react_agent(model, [tool])
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from rearag.agent.answer_text import message_text
from rearag.agent.rag import RAGAgent
from rearag.core.config import Settings

DESCRIPTION = (
    "Answer a question from the document collection {collection!r}. Returns the answer with "
    "numbered citations like [1] and the cited sources. Ask one self-contained question."
)


class AskInput(BaseModel):
    question: str = Field(description="a self-contained question about the documents")


def as_tool(
    agent: RAGAgent | None = None,
    *,
    collection: str | None = None,
    settings: Settings | None = None,
    name: str = "rearag",
    description: str | None = None,
    thread_id: str | None = None,
) -> StructuredTool:
    """A `StructuredTool` question → answer with sources. The text goes to the calling model;
    the whole `Answer` (citations, passages, reasoning) rides along as the tool message's
    artifact. With `thread_id`, follow-up questions share one remembered conversation."""
    rag = agent or RAGAgent(settings, collection=collection)

    def ask(question: str) -> tuple[str, dict[str, Any]]:
        answer = rag.ask(question, thread_id=thread_id)
        return message_text(answer), answer.model_dump()

    collection_name = rag.tools.retriever.store.name
    return StructuredTool.from_function(
        func=ask,
        name=name,
        description=description or DESCRIPTION.format(collection=collection_name),
        args_schema=AskInput,
        response_format="content_and_artifact",
    )
