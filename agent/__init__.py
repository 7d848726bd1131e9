"""The agent: configuration, the LangGraph graph, `RAGAgent`, and the command line.

`from rearag.agent import RAGAgent, as_tool, build_graph` works; they load lazily so that importing
the configuration (which every module does) stays cheap and free of import cycles.
"""

from typing import Any

from rearag.core.config import Settings, load_settings

__all__ = ["RAGAgent", "Settings", "as_tool", "build_graph", "load_settings"]


def __getattr__(name: str) -> Any:
    if name == "RAGAgent":
        from rearag.agent.rag import RAGAgent

        return RAGAgent
    if name == "as_tool":
        from rearag.agent.langchain_tool import as_tool

        return as_tool
    if name == "build_graph":
        from rearag.agent.graph import build_graph

        return build_graph
    raise AttributeError(f"module 'rearag.agent' has no attribute {name!r}")
