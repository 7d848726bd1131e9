#!/usr/bin/env bash
# The whole training loop on one CUDA GPU, on Cranfield, with the bundled SmolLM2-135M:
#   build-data → SFT warm-up → GRPO (200 steps, windows of 10, 8 completions per query) →
#   held-out table, printing seconds per step, rollout tokens/s and peak GPU memory.
# Sized for under 25 minutes on an H100. The recipe is bench/train_gpu.py: its measurements
# need the training's own process. Without CUDA it stops at once with one line.
#   demos/train_gpu.sh [DATASET_DIR] [--data DIR] [--steps N] [--eval-windows N]
#   demos/train_gpu.sh --build-data-only     # on a CPU machine: the data and model to carry
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=python3
[ -x "$ROOT/.venv/bin/python" ] && PYTHON=$ROOT/.venv/bin/python
exec "$PYTHON" "$ROOT/bench/train_gpu.py" "$@"
