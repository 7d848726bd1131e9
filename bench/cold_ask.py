"""A cold `rearag ask` as a user runs it: a new process per question, every core, the embedded
defaults, over the documentation set of bench/docsqa (ingested once, before timing).

    .venv/bin/python bench/cold_ask.py [--questions 5]

Prints and writes bench/results/cold_ask.md: per set-up, the median over the questions of the
process's wall time (start to exit: imports, loading the models, the question, printing) and of
the question alone (the graph's node times, from `--json`), with the slowest run beside each.
The set-ups run side by side, question by question, so a busy moment of the machine hits them
all: the defaults, and the same graph keeping the first-stage order without loading a ranking
model (`reranker.use_model = false`). The first ask of a fresh home converts the bundled models
(once, minutes): done before timing, as a user's second ask would find it. Runs on other CPUs
stay below this one in the report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common  # first: the offline environment before any model library

RESULTS = common.RESULTS / "cold_ask.md"
DOCSQA = common.REPO / "bench" / "docsqa"
REARAG = str(Path(sys.executable).with_name("rearag"))
SETUPS = {
    "defaults (shipped ranker)": {},
    "first-stage order (`reranker.use_model = false`)": {"REARAG_RERANKER__USE_MODEL": "false"},
}


def ask(question: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds of the process, seconds of the question) for one cold `rearag ask`."""
    start = time.perf_counter()
    done = subprocess.run(
        [REARAG, "ask", question, "--json"], env=env, capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - start
    return wall, sum(json.loads(done.stdout)["timings"].values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=5)
    args = parser.parse_args()
    home = common.bench_home("rearag-cold-")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # every core
    env |= {"REARAG_HOME": str(home), "REARAG_COLLECTION": "docs"}
    subprocess.run(
        [REARAG, "ingest", str(DOCSQA / "docs"), "-c", "docs", "--json"],
        env=env,
        capture_output=True,
        check=True,
    )
    lines = (DOCSQA / "qa.jsonl").read_text().splitlines()
    questions = [json.loads(line)["question"] for line in lines[: args.questions]]
    for extra in SETUPS.values():  # converts the bundled models once, untimed
        ask(questions[0], env | extra)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in SETUPS}
    for question in questions:
        for name, extra in SETUPS.items():
            runs[name].append(ask(question, env | extra))
            print(f"{name}: {runs[name][-1][0]:.2f} s wall, {runs[name][-1][1]:.2f} s question")

    rows = [
        "| set-up | wall, median | wall, slowest | question, median | question, slowest |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, timed in runs.items():
        walls, asked = [w for w, _ in timed], [q for _, q in timed]
        rows.append(
            f"| {name} | {statistics.median(walls):.2f} s | {max(walls):.2f} s "
            f"| {statistics.median(asked):.2f} s | {max(asked):.2f} s |"
        )
    common.write_results(
        RESULTS,
        f"# A cold `rearag ask`, one process per question\n\n"
        f"`python bench/cold_ask.py --questions {args.questions}`: the first "
        f"{args.questions} questions of bench/docsqa/qa.jsonl over its `docs/` folder, every "
        "core (torch's default threads), set-ups alternating question by question.\n\n"
        + "\n".join(rows),
        keep_other_cpus=True,
    )


if __name__ == "__main__":
    main()
