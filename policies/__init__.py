"""Reranker policies: prompt builders, output parsers and decoding settings."""
