"""rearag: agentic RAG with a reasoning listwise reranker trained by reinforcement learning.

The public API, importable from here:

    from rearag import RAGAgent, Reranker, Retriever, Settings, load_settings, RearagError

Layers, bottom to top (a package imports only from those below it):
`rearag.core` (configuration, typed errors, the data classes that cross boundaries) ←
`rearag.tools` (store, search, embedders, LLM backends) ← `rearag.policies` (reranker) ←
`rearag.eval` (judged-data evaluation) ← `rearag.rl` (GRPO training) and `rearag.agent` (the
graph, server, MCP) ← `rearag.cli`. The names above load on first use, so `import rearag`
stays cheap: no model, database or graph library is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "RAGAgent": "rearag.agent.rag",
    "Answer": "rearag.core.types",
    "Passage": "rearag.core.types",
    "Reranker": "rearag.policies.reranker",
    "Retriever": "rearag.tools.retriever",
    "Settings": "rearag.core.config",
    "load_settings": "rearag.core.config",
    "RearagError": "rearag.core.errors",
    "as_tool": "rearag.agent.serving.langchain_tool",
}
__all__ = [
    "Answer",
    "Passage",
    "RAGAgent",
    "RearagError",
    "Reranker",
    "Retriever",
    "Settings",
    "__version__",
    "as_tool",
    "load_settings",
]

if TYPE_CHECKING:
    from rearag.agent.rag import RAGAgent
    from rearag.agent.serving.langchain_tool import as_tool
    from rearag.core.config import Settings, load_settings
    from rearag.core.errors import RearagError
    from rearag.core.types import Answer, Passage
    from rearag.policies.reranker import Reranker
    from rearag.tools.retriever import Retriever


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'rearag' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
