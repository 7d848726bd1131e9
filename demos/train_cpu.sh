#!/usr/bin/env bash
# The whole training loop on a CPU, on Cranfield, with the bundled SmolLM2-135M:
#   build-data → SFT warm-up → GRPO → held-out evaluation table.
# Small windows, short completions and few steps: it proves the loop and the format on a
# laptop in under 30 minutes; learning to rank well needs far more steps (a GPU).
#   demos/train_cpu.sh [DATASET_DIR]      (default: ../shared/data/cranfield)
# Knobs (environment): STEPS (GRPO steps, 10), EXAMPLES (warm-up, 24), EVAL_WINDOWS (20).
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:-../shared/data/cranfield}
export REARAG_HOME=${REARAG_HOME:-$PWD/.rearag/train-demo}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TOKENIZERS_PARALLELISM=false
RUN=${RUN:-cpu-$(date +%Y%m%d-%H%M%S)}
STEPS=${STEPS:-10} EXAMPLES=${EXAMPLES:-24} EVAL_WINDOWS=${EVAL_WINDOWS:-20}
REARAG=rearag
[ -x .venv/bin/rearag ] && REARAG=.venv/bin/rearag
DATA="$REARAG_HOME/data/$RUN"
CONFIG=rl/configs/grpo_cpu.toml

stage() { echo; echo "== $1 ($(date +%T))"; }
began=$SECONDS

stage "build-data: hybrid top 20, windows of 4, 8 per query"
"$REARAG" train build-data "$DATASET" --out "$DATA" --first-stage hybrid --depth 20 \
  --window 4 --samples-per-query 8 --max-passage-chars 120 --min-relevant 1

stage "SFT warm-up: $EXAMPLES examples from the train split"
"$REARAG" train sft --data "$DATA" --model local:smollm2-135m-instruct --out "$RUN-warm" \
  --examples "$EXAMPLES" --batch-size 1

stage "GRPO: $STEPS steps from the warm-up"
"$REARAG" train grpo --data "$DATA" --model "policy:$RUN-warm" --out "$RUN" \
  --steps "$STEPS" --config "$CONFIG"

stage "held-out evaluation: $EVAL_WINDOWS test windows"
"$REARAG" train eval "$RUN" --data "$DATA/test" --limit "$EVAL_WINDOWS"

echo
echo "done in $(( (SECONDS - began) / 60 )) min $(( (SECONDS - began) % 60 )) s;" \
  "use the policy with --model policy:$RUN (curves: $REARAG_HOME/policies/$RUN/curves.png)"
