#!/usr/bin/env bash
# Train the reranker the defaults ship (`local:smollm2-135m-upr`) on a CPU and check it on
# queries no training saw:
#   build-data (SciFact train claims, SQuAD dev, Cranfield; shuffled windows of 4)
#   → query-likelihood (UPR) training: LoRA r 8 on each relevant (passage → query) pair
#   → held-out windows (shuffled: base vs trained, paired bootstrap intervals)
#   → held-out hybrid top-10 lists, the trained ranker fused with the first stage.
# The bundled 135M cannot learn to write a ranking here (bench/results/train.md), but it reads
# relevance as the likelihood of the query given a passage; training sharpens that.
#   demos/train_upr_cpu.sh [DATA_ROOT]      (default: ../shared/data, holding the three sets)
# Knobs (environment): EVAL_WINDOWS (held-out windows per set, 200), QUERIES (held-out lists
# per set, 100), RUN (policy name), REARAG_HOME.
# About 45 min on 2 cores with AMX (bench/results/train.md): build ~7, training ~15,
# evaluation ~25. To ship the result: cp "$REARAG_HOME/policies/$RUN/adapter/"*
# tools/adapters/smollm2-135m-upr/ and delete HOME/models/smollm2-135m-upr (merged on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-../shared/data}
export REARAG_HOME=${REARAG_HOME:-$PWD/.rearag/train-demo}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TOKENIZERS_PARALLELISM=false
RUN=${RUN:-upr-$(date +%Y%m%d-%H%M%S)}
EVAL_WINDOWS=${EVAL_WINDOWS:-200} QUERIES=${QUERIES:-100}
REARAG=rearag
[ -x .venv/bin/rearag ] && REARAG=.venv/bin/rearag
DATA="$REARAG_HOME/data"

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
  stage "build-data $name: hybrid top 20, shuffled windows of 4 passages"
  "$REARAG" train build-data "$folder" --split "$split" --out "$DATA/$name" \
    --policy rearag-direct --first-stage hybrid --depth 20 --window 4 --samples-per-query 4 \
    --max-passage-chars 200 --min-relevant 1 --shuffle
done

stage "query-likelihood training: every relevant (passage, query) pair of the train parts"
"$REARAG" train sft --data "$DATA/scifact" --data "$DATA/squad" --data "$DATA/cranfield" \
  --policy query-likelihood --model local:smollm2-135m-instruct --out "$RUN" \
  --examples 5000 --epochs 1 --learning-rate 5e-4 --batch-size 8 --lora --lora-rank 8

for name in scifact squad; do
  stage "held-out windows of $name: $EVAL_WINDOWS, shuffled"
  "$REARAG" train eval "$RUN" --data "$DATA/$name" --limit "$EVAL_WINDOWS" --order shuffled
done

for set in "${SETS[@]}"; do
  read -r name folder split <<<"$set"
  stage "held-out hybrid top-10 lists of $name: the trained ranker fused with the first stage"
  REARAG_RERANKER__FUSE_FIRST_STAGE=true "$REARAG" eval rerank "$folder" --split "$split" \
    --held-out "$DATA/$name" --policy query-likelihood --model "policy:$RUN" --depth 10 \
    --queries "$QUERIES"
done

echo
echo "done in $(( (SECONDS - began) / 60 )) min $(( (SECONDS - began) % 60 )) s;" \
  "use it with --policy query-likelihood --model policy:$RUN" \
  "(adapter: $REARAG_HOME/policies/$RUN/adapter)"
