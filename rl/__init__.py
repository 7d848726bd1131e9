"""Reinforcement-learning fine-tuning of reranker policies (GRPO via TRL)."""
