#!/usr/bin/env bash
# Train the reranker policy to rank on a CPU, with the bundled SmolLM2-135M, and check it on
# queries no training saw:
#   build-data (SciFact train claims, SQuAD dev, Cranfield; shuffled windows of 4)
#   → SFT warm-up on label-sorted answers → GRPO → held-out tables with bootstrap intervals.
# The policy is rearag-direct (the permutation at once, no <think>): a window costs its prefill
# and a dozen tokens, so the run sees thousands of windows instead of dozens.
#   demos/train_cpu.sh [DATA_ROOT]      (default: ../shared/data, holding the three sets)
# Knobs (environment): EXAMPLES (warm-up windows, 1000), STEPS (GRPO steps, 30),
# EVAL_WINDOWS (held-out windows per set, 150), RUN (policy name), REARAG_HOME.
# Sized for about 80 min on 2 cores with AMX, estimated from its stages measured apart
# (bench/results/train.md): build ~7, warm-up ~33, GRPO ~19 (37 s a step), evaluation ~18.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-../shared/data}
export REARAG_HOME=${REARAG_HOME:-$PWD/.rearag/train-demo}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TOKENIZERS_PARALLELISM=false
RUN=${RUN:-cpu-$(date +%Y%m%d-%H%M%S)}
EXAMPLES=${EXAMPLES:-1000} STEPS=${STEPS:-30} EVAL_WINDOWS=${EVAL_WINDOWS:-150}
REARAG=rearag
[ -x .venv/bin/rearag ] && REARAG=.venv/bin/rearag
DATA="$REARAG_HOME/data"
CONFIG=rl/configs/grpo_cpu.toml
UPR=query-likelihood=local:smollm2-135m-instruct

stage() { echo; echo "== $1 ($(date +%T))"; }
began=$SECONDS

# name, BEIR folder, judged split
SETS=("scifact $ROOT/scifact-train train" "squad $ROOT/squad-dev test" \
  "cranfield $ROOT/cranfield test")
for set in "${SETS[@]}"; do
  read -r name folder split <<<"$set"
  if [ -f "$DATA/$name/manifest.json" ]; then
    echo "data for $name: $DATA/$name (built before)"
    continue
  fi
  stage "build-data $name: hybrid top 20, shuffled windows of 4 passages of 200 characters"
  "$REARAG" train build-data "$folder" --split "$split" --out "$DATA/$name" \
    --policy rearag-direct --first-stage hybrid --depth 20 --window 4 --samples-per-query 4 \
    --max-passage-chars 200 --min-relevant 1 --shuffle
done
ALL=(--data "$DATA/scifact" --data "$DATA/squad" --data "$DATA/cranfield")

stage "SFT warm-up: $EXAMPLES windows, answers sorted by relevance label"
"$REARAG" train sft "${ALL[@]}" --model local:smollm2-135m-instruct --out "$RUN-warm" \
  --examples "$EXAMPLES" --batch-size 4 --learning-rate 1e-4

stage "GRPO: $STEPS steps from the warm-up"
"$REARAG" train grpo "${ALL[@]}" --model "policy:$RUN-warm" --out "$RUN" \
  --steps "$STEPS" --config "$CONFIG"

for name in scifact squad; do
  stage "held-out evaluation on $name: $EVAL_WINDOWS test windows, shuffled and first-stage order"
  "$REARAG" train eval "$RUN" --data "$DATA/$name" --limit "$EVAL_WINDOWS" \
    --model "policy:$RUN-warm" --model "policy:$RUN" --compare "$UPR"
done

echo
echo "done in $(( (SECONDS - began) / 60 )) min $(( (SECONDS - began) % 60 )) s;" \
  "use the policy with --policy rearag-direct --model policy:$RUN" \
  "(curves: $REARAG_HOME/policies/$RUN/curves.png)"
