"""GRPO on the reranker policy with TRL's `GRPOTrainer`.

The configuration is resolved in one place (`plan_grpo`): rearag's defaults for this machine,
then the `[grpo]` table of a TOML file (any `GRPOConfig` field), then the command-line flags.
`--dry-run` prints that plan, the data statistics and the launch command, and trains nothing.
Checkpoints go to `$REARAG_HOME/runs/grpo/NAME`; `--resume` continues from the last one.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shlex
import time
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rearag.core.config import Settings
from rearag.core.errors import InvalidInputError, NotFoundError
from rearag.policies.registry import get_policy
from rearag.rl.data import DataManifest, SplitStats, data_paths, load_train
from rearag.rl.registry import PolicyManifest, ensure_new
from rearag.rl.rewards import reward_functions
from rearag.rl.runs import (
    CURVES,
    METRICS,
    MetricsLog,
    checkpoints,
    device_args,
    lora_config,
    on_gpu,
    plot_curves,
    quiet,
    resolve_model,
    run_folder,
    save_trained,
)

CONFIGS = Path(__file__).with_name("configs")
CURVE_PANELS = {
    "reward (weighted)": "reward",
    "rank reward": "rewards/rank/mean",
    "format valid rate": "rewards/format_valid/mean",
    "window nDCG@10": "rewards/ndcg/mean",
}


class GRPOPlan(BaseModel):
    name: str
    model: str
    model_path: str
    policy: str
    data: list[str]
    train: SplitStats
    run_dir: str
    resume_from: str | None
    lora: dict[str, Any] | None
    reward_weights: dict[str, float]
    grpo: dict[str, Any]  # the GRPOConfig fields rearag sets (every other field: TRL's default)
    launch: str


class GRPOResult(BaseModel):
    name: str
    folder: str
    steps: int
    seconds: float
    seconds_per_step: float
    last: dict[str, float]  # the last logged metrics


def default_grpo(window: int, gpu: bool) -> dict[str, Any]:
    generations = 8 if gpu else 4
    return {
        "num_generations": generations,
        # One query's group per step on CPU; GPUs take several.
        "per_device_train_batch_size": generations * (2 if gpu else 1),
        # Room for a short reasoning plus `[i] > ` per passage.
        "max_completion_length": 64 + 6 * window,
        "temperature": 1.0,
        "learning_rate": 1e-6,
        "logging_steps": 1,
        "save_steps": 10,
        "save_total_limit": 2,
        "report_to": "none",
        "num_train_epochs": 1,
        **({"use_vllm": True} if gpu and importlib.util.find_spec("vllm") else {}),
        **device_args(),
    }


def read_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from None
    unknown = set(data) - {"grpo", "rewards", "lora"}
    if unknown:
        raise InvalidInputError(
            f"{path}: unknown table(s) {sorted(unknown)}; use [grpo], [rewards], [lora]"
        )
    return data


def plan_grpo(
    settings: Settings,
    data: Path | list[Path],
    model: str,
    out: str,
    *,
    policy: str | None = None,
    lora: bool = False,
    steps: int | None = None,
    config: Path | None = None,
    resume: bool = False,
    argv: list[str] | None = None,
) -> tuple[GRPOPlan, DataManifest]:
    from trl import GRPOConfig

    paths = data_paths(data)
    _, manifest = load_train(paths)
    if policy and policy != manifest.policy:
        raise InvalidInputError(
            f"{manifest.source} was built for policy {manifest.policy}, not {policy}: "
            f"rebuild it with `rearag train build-data --policy {policy}`"
        )
    if steps is not None and steps < 1:
        raise InvalidInputError("--steps must be at least 1")
    ensure_new(settings, out)
    run_dir = run_folder(settings, "grpo", out)
    found = checkpoints(run_dir)
    if resume and not found:
        raise NotFoundError(
            f"nothing to resume: {run_dir} has no checkpoint; start without --resume"
        )
    if not resume and found:
        raise InvalidInputError(
            f"{run_dir} holds checkpoints of an earlier run: pass --resume to continue it, or "
            "choose another --out"
        )
    table = read_toml(config)
    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    unknown = sorted(set(table.get("grpo", {})) - known)
    if unknown:
        raise InvalidInputError(
            f"{config}: {unknown} are not GRPOConfig fields (TRL {_trl_version()})"
        )
    grpo = {**default_grpo(manifest.window, on_gpu()), **table.get("grpo", {})}
    if steps:
        grpo.pop("num_train_epochs", None)
        grpo["max_steps"] = steps
    batch, generations = grpo["per_device_train_batch_size"], grpo["num_generations"]
    if not (isinstance(batch, int) and isinstance(generations, int) and generations >= 2):
        raise InvalidInputError(
            "[grpo] num_generations must be an integer ≥ 2, per_device_train_batch_size an integer"
        )
    if batch % generations:
        raise InvalidInputError(
            "per_device_train_batch_size must be a multiple of num_generations (TRL groups "
            "the completions of one prompt)"
        )
    weights = {"rank": 0.8, "tags": 0.1, "answer": 0.1, **table.get("rewards", {})}
    if set(weights) != {"rank", "tags", "answer"}:
        raise InvalidInputError(f"{config}: [rewards] takes rank, tags and answer weights")
    launch = shlex.join(["rearag", *(argv or [])])
    if on_gpu():
        import torch

        if torch.cuda.device_count() > 1:
            launch = shlex.join(
                [
                    "accelerate",
                    "launch",
                    "--config_file",
                    str(CONFIGS / "accelerate_multi_gpu.yaml"),
                    "-m",
                    "rearag",
                    *(argv or []),
                ]
            )
    plan = GRPOPlan(
        name=out,
        model=model,
        model_path=resolve_model(settings, model),
        policy=manifest.policy,
        data=[str(p.resolve()) for p in paths],
        train=manifest.splits["train"],
        run_dir=str(run_dir),
        resume_from=str(found[-1]) if resume else None,
        lora=table.get("lora", {}) if lora else None,
        reward_weights=weights,
        grpo=grpo,
        launch=launch,
    )
    return plan, manifest


def train_grpo(plan: GRPOPlan, settings: Settings, *, progress: bool = True) -> GRPOResult:
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    train, manifest = load_train([Path(p) for p in plan.data])
    if len(train) == 0:
        raise InvalidInputError(f"{manifest.source}: the train split has no rows")
    funcs, weights = reward_functions(
        get_policy(plan.policy),
        (plan.reward_weights["rank"], plan.reward_weights["tags"], plan.reward_weights["answer"]),
    )
    run_dir = Path(plan.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        config = GRPOConfig(
            output_dir=str(run_dir),
            reward_weights=weights,
            disable_tqdm=not progress,
            **plan.grpo,
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"invalid GRPO configuration: {exc}") from None
    tokenizer = AutoTokenizer.from_pretrained(plan.model_path)
    resume_step = int(plan.resume_from.split("-")[-1]) if plan.resume_from else 0
    trainer = GRPOTrainer(
        model=plan.model_path,
        reward_funcs=funcs,
        args=config,
        train_dataset=train.select_columns(["prompt", "labels"]),
        processing_class=tokenizer,
        peft_config=lora_config(plan.lora) if plan.lora is not None else None,
        callbacks=[MetricsLog(run_dir / METRICS, resume_step)],
    )
    if not progress:
        quiet(trainer)
    began = time.perf_counter()
    trainer.train(resume_from_checkpoint=plan.resume_from)
    seconds = time.perf_counter() - began
    plot_curves(run_dir / METRICS, run_dir / CURVES, CURVE_PANELS)
    steps = trainer.state.global_step
    folder = save_trained(
        settings,
        PolicyManifest(
            name=plan.name,
            policy=plan.policy,
            method="grpo",
            base_model=plan.model,
            lora=plan.lora is not None,
            data=manifest.source,
            data_fingerprint=manifest.fingerprint,
            steps=steps,
            train_seconds=seconds,
        ),
        trainer.model,
        tokenizer,
        run_dir,
    )
    logged = [h for h in trainer.state.log_history if "reward" in h]
    last = {k: float(v) for k, v in (logged[-1] if logged else {}).items() if _number(v)}
    return GRPOResult(
        name=plan.name,
        folder=str(folder),
        steps=steps,
        seconds=seconds,
        seconds_per_step=seconds / max(1, steps - resume_step),
        last=last,
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _trl_version() -> str:
    import trl

    return trl.__version__
