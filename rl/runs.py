"""What the warm-up and GRPO runs share: the device settings, LoRA, the run folder with its
metrics log and curves, and saving the finished model as a policy."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from rearag.core.config import Settings
from rearag.core.errors import InvalidInputError
from rearag.rl.registry import PolicyManifest, check_name, save_policy
from rearag.tools.local_llm import model_path

METRICS = "metrics.jsonl"
CURVES = "curves.png"
ADAPTER = "adapter"


def on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def device_args() -> dict[str, Any]:
    """TrainingArguments for this machine: no gradient checkpointing on CPU (TRL's needs it
    off); bf16 autocast on CUDA and on CPUs with AMX, where it is fast (without AMX bf16 runs
    slower than fp32: tools/embedder.py)."""
    if not on_gpu():
        from rearag.tools.embedder import why_bf16_is_slow

        fast = why_bf16_is_slow("cpu") is None
        return {"use_cpu": True, "bf16": fast, "activation_checkpointing": False}
    import torch

    return {"bf16": torch.cuda.is_bf16_supported()}


def resolve_model(settings: Settings, ref: str) -> str:
    if ref.startswith("litellm:"):
        raise InvalidInputError(
            f"{ref} is an API model and cannot be trained: use local:, hf: or policy:"
        )
    return model_path(ref, settings.models_dir, settings.policies_dir)


def lora_config(options: dict[str, Any]) -> Any:
    from peft import LoraConfig

    defaults = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear"}
    try:
        return LoraConfig(task_type="CAUSAL_LM", **{**defaults, **options})
    except TypeError as exc:
        raise InvalidInputError(f"invalid [lora] option: {exc}") from None


def run_folder(settings: Settings, kind: str, name: str) -> Path:
    return settings.home / "runs" / kind / check_name(name)


def checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first. The trainer writes trainer_state.json last, so a
    checkpoint a kill interrupted is skipped."""
    found = [
        p
        for p in run_dir.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


class MetricsLog(TrainerCallback):
    """Every logged metric as one JSON line. On resume, lines after the checkpoint are dropped:
    those steps run again and are logged again."""

    def __init__(self, path: Path, resume_step: int = 0) -> None:
        self.path = path
        self.began = time.perf_counter()
        if path.is_file():
            kept = [
                line
                for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= resume_step
            ]
            path.write_text("".join(f"{line}\n" for line in kept))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **_: Any):
        if logs:
            record = {"step": state.global_step, **logs}
            with self.path.open("a") as fh:
                fh.write(json.dumps(record, default=float) + "\n")


def quiet(trainer: Any) -> None:
    """Keep stdout for `--json`: without a progress bar the trainer prints every log dict."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(metrics: Path, png: Path, panels: dict[str, str]) -> bool:
    """One panel per metric key (title → key) against the step; False when nothing to plot."""
    rows = read_metrics(metrics)
    series = {
        title: [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)]
        for title, key in panels.items()
    }
    series = {t: s for t, s in series.items() if s}
    if not series:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.2), squeeze=False)
    for ax, (title, points) in zip(axes[0], series.items(), strict=True):
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return True


def save_trained(
    settings: Settings, manifest: PolicyManifest, model: Any, tokenizer: Any, run_dir: Path
) -> Path:
    """Merge LoRA adapters into the weights (so `policy:NAME` loads as a plain model) and
    register the policy with the run's metrics and curves. A LoRA run also keeps its adapter
    alone (`adapter/`, bf16: a few MB a project can ship, where the merged model is hundreds)."""
    extras = [run_dir / METRICS, run_dir / CURVES]
    if hasattr(model, "merge_and_unload"):
        save_adapter(model, run_dir / ADAPTER, manifest.base_model)
        extras.append(run_dir / ADAPTER)
        model = model.merge_and_unload()
    model.config.use_cache = True
    return save_policy(settings, manifest, model, tokenizer, extras)


def save_adapter(model: Any, folder: Path, base_model: str) -> None:
    """A PEFT model's adapter weights, cast to bf16 (half the size; the adapter is a small
    correction, merged into float32 weights at load). Its config names the base model by its
    reference, not by this machine's path to it."""
    import torch
    from safetensors.torch import load_file, save_file

    model.save_pretrained(folder)
    weights = folder / "adapter_model.safetensors"
    save_file({k: v.to(torch.bfloat16) for k, v in load_file(weights).items()}, weights)
    config = folder / "adapter_config.json"
    config.write_text(
        json.dumps({**json.loads(config.read_text()), "base_model_name_or_path": base_model})
    )
