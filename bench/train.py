"""GRPO cost on this machine: seconds per step, rollout tokens per second and peak memory for
the bundled SmolLM2-135M, for the CPU recipe before issue 23 and the one after it.

    .venv/bin/python bench/train.py [--recipes before after] [--steps 3]

- before: `rearag-reasoning` (think, then answer), windows of 5 passages of 400 characters,
  4 generations, fp32, 64 + 6 x window new tokens.
- after: `rearag-direct` (the answer at once), windows of 4 passages of 200 characters,
  8 generations, bf16 autocast where the CPU has AMX (rl/runs.device_args), 48 new tokens.

Each recipe runs in its own process (so peak RSS is its own) with the real TRL trainer on
synthetic windows cut from the Cranfield corpus (speed does not depend on relevance; labels are
random). Rollout time is measured around the trainer's generation call; the rest of a step is
the policy's forward/backward pass. The first step is reported apart (it pays for warm-up).
Writes bench/results/train_cost.md.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # first: the offline, one-thread environment before any model library

RESULTS = common.RESULTS / "train_cost.md"
DATASET = common.CRANFIELD


RECIPES = {
    "before": {
        "policy": "rearag-reasoning",
        "window": 5,
        "chars": 400,
        "generations": 4,
        "bf16": False,
        "max_completion_length": 64 + 6 * 5,
    },
    "after": {
        "policy": "rearag-direct",
        "window": 4,
        "chars": 200,
        "generations": 8,
        "bf16": None,  # rearag's device default
        "max_completion_length": 48,
    },
}


def one(name: str, steps: int, dataset: Path) -> dict:
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from rearag.core.config import load_settings
    from rearag.policies.registry import get_policy
    from rearag.rl.grpo import default_grpo
    from rearag.rl.rewards import reward_functions
    from rearag.tools.local_llm import bundled_model_dir

    recipe = RECIPES[name]
    window, generations = recipe["window"], recipe["generations"]
    settings = load_settings()
    path = str(bundled_model_dir("smollm2-135m-instruct", settings.models_dir))
    policy = get_policy(recipe["policy"])
    corpus = [json.loads(line)["text"] for line in (dataset / "corpus.jsonl").open()]
    queries = [json.loads(line)["text"] for line in (dataset / "queries.jsonl").open()]
    rng = random.Random(0)
    rows = []
    for i in range(steps):
        passages = corpus[i * window : (i + 1) * window]
        rows.append(
            {
                "prompt": policy.messages(queries[i], passages, recipe["chars"]),
                "labels": [rng.choice([0, 0, 1, 2]) for _ in passages],
            }
        )
    funcs, weights = reward_functions(policy)
    grpo = {
        **default_grpo(window, gpu=False),
        "num_generations": generations,
        "per_device_train_batch_size": generations,
        "max_completion_length": recipe["max_completion_length"],
        **({} if recipe["bf16"] is None else {"bf16": recipe["bf16"]}),
        "max_steps": steps,
        "save_strategy": "no",
        "shuffle_dataset": False,
    }
    grpo.pop("num_train_epochs")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = GRPOTrainer(
            model=path,
            reward_funcs=funcs,
            args=GRPOConfig(output_dir=tmp, reward_weights=weights, disable_tqdm=True, **grpo),
            train_dataset=Dataset.from_list(rows),
            processing_class=AutoTokenizer.from_pretrained(path),
        )
        rollout: list[float] = []
        generate = trainer._generate  # timed from outside: TRL logs only the whole step

        def timed(*args, **kwargs):
            began = time.perf_counter()
            result = generate(*args, **kwargs)
            rollout.append(time.perf_counter() - began)
            return result

        trainer._generate = timed
        step_times: list[float] = []
        tokens: list[float] = []

        from transformers import TrainerCallback

        class Clock(TrainerCallback):
            def on_step_begin(self, *a, **k):
                self.began = time.perf_counter()

            def on_step_end(self, *a, **k):
                step_times.append(time.perf_counter() - self.began)

            def on_log(self, args, state, control, logs=None, **k):
                if logs and "completions/mean_length" in logs:
                    tokens.append(logs["completions/mean_length"] * generations)

        trainer.add_callback(Clock())
        trainer.train()
    tok = trainer.processing_class
    text = tok.apply_chat_template(rows[0]["prompt"], add_generation_prompt=True, tokenize=False)
    prompt_tokens = len(tok(text, add_special_tokens=False)["input_ids"])
    return {
        "recipe": name,
        "policy": recipe["policy"],
        "generations": generations,
        "bf16": grpo["bf16"],
        "window": window,
        "prompt_tokens": prompt_tokens,
        "first_step_s": step_times[0],
        "step_s": statistics.median(step_times[1:] or step_times),
        "rollout_s": statistics.median(rollout[1:] or rollout),
        "rollout_tok_s": statistics.median(
            t / r for t, r in zip(tokens[1:] or tokens, rollout[1:] or rollout, strict=False)
        ),
        "completion_tokens": statistics.median(tokens),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--one", choices=RECIPES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.steps, args.dataset)))
        return
    rows = []
    for name in args.recipes:
        cmd = [sys.executable, __file__, "--one", name, "--steps", str(args.steps)]
        cmd += ["--dataset", str(args.dataset)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"recipe {name} failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{name}: {rows[-1]}", file=sys.stderr)
    header = (
        "| recipe | policy | window | generations | bf16 | prompt tokens | s/step (median) "
        "| first step s | rollout s | rollout share | completion tokens/step | rollout tok/s "
        "| peak RSS MB |\n"
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r['recipe']} | {r['policy']} | {r['window']} | {r['generations']} | {r['bf16']} "
        f"| {r['prompt_tokens']} | {r['step_s']:.1f} | {r['first_step_s']:.1f} "
        f"| {r['rollout_s']:.1f} "
        f"| {r['rollout_s'] / r['step_s']:.0%} | {r['completion_tokens']:.0f} "
        f"| {r['rollout_tok_s']:.1f} | {r['peak_rss_mb']:.0f} |"
        for r in rows
    ]
    before = {r["recipe"]: r for r in rows}
    ratio = ""
    if {"before", "after"} <= before.keys():
        b, a = before["before"], before["after"]
        ratio = (
            f"\nafter vs before: {b['step_s'] / a['step_s']:.1f}x less time per step, "
            f"{b['step_s'] / b['generations'] / (a['step_s'] / a['generations']):.1f}x less per "
            "rollout scored.\n"
        )
    text = (
        "# GRPO step cost on CPU (bench/train.py)\n\n"
        f"SmolLM2-135M (bundled, untrained: speed, not learning), one prompt's group per step, "
        f"{args.steps} steps per recipe, OMP_NUM_THREADS="
        f"{__import__('os').environ['OMP_NUM_THREADS']}, temperature 1.0. Medians over steps "
        "after the first.\n\n" + header + "\n".join(lines) + "\n" + ratio
    )
    common.write_results(RESULTS, text)


if __name__ == "__main__":
    main()
