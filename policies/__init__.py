"""Reranker policies: prompt builders, output parsers, sliding window and the Reranker API."""

from rearag.policies.registry import POLICIES, get_policy
from rearag.policies.reranker import RankedResults, Reranker, Result, WindowTrace

__all__ = ["POLICIES", "RankedResults", "Reranker", "Result", "WindowTrace", "get_policy"]
