"""What the graph's nodes call: Chroma store, BM25, fusion, embedders, LLM backends."""

from rearag.tools.errors import RearagError

__all__ = ["RearagError"]
