"""End-to-end latency of `ask` per node on the embedded defaults (bundled SmolLM2-135M for every
LLM node, bundled MiniLM embedder), over the demo corpus.

    .venv/bin/python bench/agent.py [--questions 3]

Prints and writes bench/results/agent.md: the median seconds per node over the questions and
each node's share of the total, for the defaults (the reranker is the shipped query-likelihood
adapter fused with the first stage: bench/results/train.md), for the same graph keeping the
first-stage order (`reranker.use_model = false`) and for the listwise REARANK prompt on the
bundled model (`reranker.policy = "rearag-reasoning"`, what the defaults paid before the model
was measured unable to rank that way). With the bundled model the
rewriter only resolves follow-ups, the grader decides by the evidence score and the answer is
extracted (its defaults);
`--llm-nodes` makes every node ask the model (the grader too, which `rearag demo` does not).
"""

from __future__ import annotations

import argparse
import os
import statistics
from typing import Any

import common  # first: the offline, one-thread environment before any model library
from langgraph.checkpoint.memory import InMemorySaver

from rearag.agent.graph import NODES
from rearag.agent.rag import RAGAgent
from rearag.core.config import Settings, load_settings
from rearag.tools.ingest import ingest
from rearag.tools.store import Store

RESULTS = common.RESULTS / "agent.md"
CORPUS = common.DEMO_CORPUS
QUESTIONS = common.DEMO_QUESTIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--llm-nodes", action="store_true", help="grade and write with the model")
    args = parser.parse_args()
    home = common.bench_home()
    forced = (
        {"rewriter.standalone": True, "grader.use_model": True, "generator.mode": "generate"}
        if args.llm_nodes
        else {}
    )
    base = load_settings(home=home, collection="bench-agent", **forced)
    ingest([CORPUS], Store(base, "bench-agent", create=True), progress=False)

    # The defaults against the same graph with two other rerankers, in one process.
    def variant(**options: Any) -> Settings:
        return load_settings(home=home, collection="bench-agent", **forced, **options)

    setups = {
        "defaults (shipped ranker)": base,
        "first-stage order": variant(**{"reranker.use_model": False}),
        "listwise on the 135M": variant(**{"reranker.policy": "rearag-reasoning"}),
    }
    medians: dict[str, dict[str, float]] = {}
    rounds: dict[str, list[int]] = {}
    for label, settings in setups.items():
        agent = RAGAgent(settings, checkpointer=InMemorySaver())
        agent.ask("warm-up: what is rearag?")  # model loading and conversion are not measured
        per_node: dict[str, list[float]] = {n: [] for n in NODES}
        totals, rounds[label] = [], []
        for question in QUESTIONS[: args.questions]:
            answer = agent.ask(question)
            for node in NODES:
                per_node[node].append(answer.timings.get(node, 0.0))
            totals.append(sum(answer.timings.values()))
            rounds[label].append(answer.attempts)
            print(f"{label}: {sum(answer.timings.values()):.1f}s  {question}")
        medians[label] = {n: statistics.median(v) for n, v in per_node.items()}
        medians[label]["total"] = statistics.median(totals)

    labels = list(setups)
    command = "python bench/agent.py" + (" --llm-nodes" if args.llm_nodes else "")
    lines = [
        "# Agent latency per node",
        "",
        f"`{command}`: {args.questions} questions over the demo corpus, every LLM node on "
        f"local:smollm2-135m-instruct, {os.cpu_count()} cores, OMP_NUM_THREADS="
        f"{os.environ['OMP_NUM_THREADS']}; "
        f"{'every node asks the model' if args.llm_nodes else 'embedded defaults'}; "
        f"retrieval rounds per question: {rounds}. Medians, all set-ups in one process.",
        "",
        "| node | " + " | ".join(f"{label}: median s | share" for label in labels) + " |",
        "| --- |" + " ---: | ---: |" * len(labels),
    ]
    for node in [*NODES, "total"]:
        cells = " | ".join(
            f"{medians[label][node]:.2f} | {medians[label][node] / medians[label]['total']:.0%}"
            for label in labels
        )
        lines.append(f"| {'**total**' if node == 'total' else node} | {cells} |")
    base_total = medians[labels[0]]["total"]
    lines += [
        "",
        "Per question, against the defaults: "
        + "; ".join(f"{label} {medians[label]['total'] / base_total:.2f}x" for label in labels[1:])
        + ".",
        "",
    ]
    common.write_results(RESULTS, "\n".join(lines))


if __name__ == "__main__":
    main()
