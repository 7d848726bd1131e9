"""Reinforcement-learning fine-tuning of reranker policies: REARANK's recipe, GRPO via TRL.

`data` builds judged windows → `sft` warms the format up → `grpo` trains with the `rewards`
→ `evaluate` scores held-out windows against the baselines. `runs` holds what the trainers
share (device, LoRA, metrics, curves); `registry` saves finished policies for `policy:NAME`;
`cli` is `rearag train …` and `rearag policies …`.
"""
