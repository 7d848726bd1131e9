"""The supervised warm-up before GRPO (the cold-start fix R1-style rankers use).

A small model that never writes the ranking format gets identical rewards in every GRPO group,
so GRPO learns nothing. A few synthetic examples fix that: each is a training window's own
prompt (the policy's builder) and, as target, one sentence of reasoning that names the relevant
passages plus the permutation sorted by relevance label. Examples are picked so the most
relevant passage sits at every position in turn: otherwise the model memorises one answer.
The loss is on the completion only (TRL's default for prompt-completion data).

A likelihood policy (UPR) is trained the way query-likelihood models are: each relevant
(query, passage) pair of the train windows becomes the passage's prompt with the query as the
reply, so the likelihood the ranker reads rises where it should be high.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rearag.core.config import Settings
from rearag.core.errors import InvalidInputError
from rearag.core.sanitize import clean_passage
from rearag.policies.policy import Policy
from rearag.policies.registry import get_policy
from rearag.rl.data import data_paths, load_train
from rearag.rl.registry import PolicyManifest, ensure_new
from rearag.rl.runs import (
    CURVES,
    METRICS,
    MetricsLog,
    device_args,
    lora_config,
    plot_curves,
    quiet,
    resolve_model,
    run_folder,
    save_trained,
)


class SFTResult(BaseModel):
    name: str
    policy: str
    folder: str
    examples: int
    steps: int
    final_loss: float | None
    seconds: float


def target_order(labels: list[int]) -> list[int]:
    """Positions best first: by label, ties in input order."""
    return sorted(range(len(labels)), key=lambda i: -labels[i])


def target_text(query: str, passages: list[str], labels: list[int], *, think: bool = True) -> str:
    """The warm-up's answer for one window: the permutation sorted by label, after one
    sentence of reasoning for a policy that reasons."""
    order = target_order(labels)
    ranking = " > ".join(f"[{i + 1}]" for i in order)
    if not think:
        return f"<answer>{ranking}</answer>"
    relevant = [i for i in order if labels[i] > 0]
    if relevant:
        best = relevant[0]
        gist = clean_passage(passages[best], 40)  # neutralised: it cannot close <think>
        also = ", ".join(f"[{i + 1}]" for i in relevant[1:3])
        reason = f"Passage [{best + 1}] ({gist}) answers the query best" + (
            f"; {also} also relate to it." if also else "; the others do not."
        )
    else:
        reason = "No passage addresses the query directly; I keep the given order."
    return f"<think>{reason}</think>\n<answer>{ranking}</answer>"


def pick_examples(rows: list[dict[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` rows, round-robin over the position of the most relevant passage."""
    by_best: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_best[target_order(row["labels"])[0]].append(row)
    rng = random.Random(seed)
    for bucket in by_best.values():
        rng.shuffle(bucket)
    picked: list[dict[str, Any]] = []
    while len(picked) < count and any(by_best.values()):
        for position in sorted(by_best):
            if by_best[position] and len(picked) < count:
                picked.append(by_best[position].pop())
    return picked


def likelihood_examples(
    rows: list[dict[str, Any]], policy: Policy, max_chars: int, count: int, seed: int
) -> list[dict[str, Any]]:
    """Up to `count` prompt-completion pairs, one per distinct relevant (query, passage)."""
    pairs = {
        (row["query_id"], passage): row["query"]
        for row in rows
        for passage, label in zip(row["passages"], row["labels"], strict=True)
        if label > 0
    }
    picked = sorted(pairs.items())
    random.Random(seed).shuffle(picked)
    return [
        {
            "prompt": policy.passage_messages(passage, max_chars),
            "completion": [{"role": "assistant", "content": policy.likelihood_reply(query)}],
        }
        for (_, passage), query in picked[:count]
    ]


def ranking_examples(rows: list[dict[str, Any]], policy: Policy) -> list[dict[str, Any]]:
    """One prompt-completion pair per window: its stored prompt, the label-sorted answer."""
    return [
        {
            "prompt": row["prompt"],
            "completion": [
                {
                    "role": "assistant",
                    "content": target_text(
                        row["query"], row["passages"], row["labels"], think=policy.think
                    ),
                }
            ],
        }
        for row in rows
    ]


def train_sft(
    settings: Settings,
    data: Path | list[Path],
    model: str,
    out: str,
    *,
    examples: int = 40,
    epochs: float = 1.0,
    learning_rate: float = 5e-5,
    batch_size: int = 2,
    lora: bool = False,
    lora_rank: int = 16,
    policy: str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> SFTResult:
    """Fine-tune `model` on warm-up examples from the train split(s) of `data` (one folder or
    several built for the same policy); register it as `out`. `policy` defaults to the one the
    data was built for; a likelihood policy can train on data built for any policy (it reads
    only queries, passages and labels)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    ensure_new(settings, out)
    if examples < 1 or batch_size < 1 or epochs <= 0 or lora_rank < 1:
        raise InvalidInputError(
            "--examples, --batch-size, --epochs and --lora-rank must be positive"
        )
    train, manifest = load_train(data_paths(data))
    the_policy = get_policy(policy or manifest.policy)
    if the_policy.kind == "likelihood":
        max_chars = settings.reranker.max_passage_chars  # what the ranker will read
        dataset_rows = likelihood_examples(list(train), the_policy, max_chars, examples, seed)
    elif the_policy.name != manifest.policy:
        raise InvalidInputError(
            f"{manifest.source} was built for policy {manifest.policy}, not {the_policy.name}: "
            f"rebuild it with `rearag train build-data --policy {the_policy.name}`"
        )
    else:
        dataset_rows = ranking_examples(pick_examples(list(train), examples, seed), the_policy)
    if not dataset_rows:
        raise InvalidInputError(f"{manifest.source}: the train split has no usable rows")
    dataset = Dataset.from_list(dataset_rows)
    path = resolve_model(settings, model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    run_dir = run_folder(settings, "sft", out)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = SFTConfig(
        output_dir=str(run_dir),
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        max_length=None,  # never cut a long window's prompt: the completion is at its end
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=seed,
        disable_tqdm=not progress,
        **device_args(),
    )
    began = time.perf_counter()
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(path),
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config({"r": lora_rank, "lora_alpha": 2 * lora_rank}) if lora else None,
        callbacks=[MetricsLog(run_dir / METRICS)],
    )
    if not progress:
        quiet(trainer)
    trainer.train()
    seconds = time.perf_counter() - began
    plot_curves(run_dir / METRICS, run_dir / CURVES, {"warm-up loss": "loss"})
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    folder = save_trained(
        settings,
        PolicyManifest(
            name=out,
            policy=the_policy.name,
            method="sft",
            base_model=model,
            lora=lora,
            data=" + ".join(str(p.resolve()) for p in data_paths(data)),
            data_fingerprint=manifest.fingerprint,
            steps=trainer.state.global_step,
            train_seconds=seconds,
        ),
        trainer.model,
        tokenizer,
        run_dir,
    )
    return SFTResult(
        name=out,
        policy=the_policy.name,
        folder=str(folder),
        examples=len(dataset_rows),
        steps=trainer.state.global_step,
        final_loss=losses[-1] if losses else None,
        seconds=seconds,
    )
