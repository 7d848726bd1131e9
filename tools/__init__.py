"""What the graph's nodes call: Chroma store, BM25, fusion, embedders, LLM backends.

Depends only on `rearag.core`."""
