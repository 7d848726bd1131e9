"""rearag: agentic RAG with a reasoning listwise reranker trained by reinforcement learning.

The code lives in four subpackages: `rearag.agent` (graph, config, CLI), `rearag.tools`
(retrieval, embedders, LLM backends), `rearag.policies` (reranker policies) and `rearag.rl`
(GRPO training). Importing `rearag` itself stays cheap: no model or database is loaded.
"""

__version__ = "0.1.0"
