"""Where the grader's answer bar (`grader.min_score`) stands: for each bar, the answerable
questions still answered right and the unanswerable ones abstained on, on a SQuAD 2.0 dev sample
(with its cross-article questions) and on the documentation set of bench/docsqa.

    .venv/bin/python bench/abstention.py [--sample 150] [--seed 0]

Each question is searched and reranked as the graph's first round does (embedded defaults), then
graded at every bar: answered when its best sentence is on the topic (`grader.min_similarity`),
names nothing the passages lack and scores at least the bar (`evidence.weigh`); an answered
question is right when the extractive answer holds a gold answer. Prints and writes
bench/results/abstention.md and abstention.png, with the highest bar at which no SQuAD question
answered right at the lowest bar is abstained on (SQuAD is calibration data nobody here wrote);
the configured bar stays a step below it, as a margin for other collections. bench/docsqa
shows what the bar does on documentation.

A second table per set weighs two signals the grader could add where the bar passes, measured
so that a claim about them rests on numbers: the answer's shape (abstain when the question asks
for an option, a number, a version … and the extracted answer holds none, `answer_types`), and
how much the top passages make the question likely under the shipped query-likelihood ranker
(its mean log-probability of the question's tokens given the best of the top passages, minus
given an empty one: pointwise mutual information, per token), at several bars.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import common  # first: the offline environment before any model library

from rearag.agent import answer_types, evidence, nodes
from rearag.agent.rag import RAGAgent
from rearag.core.config import load_settings
from rearag.core.progress import progress_bar
from rearag.core.text import CITATION
from rearag.core.types import Passage
from rearag.eval.qa import plan_questions
from rearag.eval.qa_metrics import contains_answer
from rearag.policies.reranker import Reranker

RESULTS = common.RESULTS / "abstention.md"
PLOT = common.RESULTS / "abstention.png"
DOCSQA = common.REPO / "bench" / "docsqa"
BARS = [round(0.5 + 0.05 * i, 2) for i in range(13)]  # 0.50 … 1.10
PMI_BARS = [0.5, 1.0, 1.5, 2.0, 2.5]


def measure(dataset: Path, sample: int | None, seed: int) -> list[dict]:
    """Per question: its kind, its evidence, whether its extractive answer is right."""
    settings = load_settings()
    questions, _ = plan_questions(dataset, settings, sample=sample, seed=seed)
    agents: dict[str | None, RAGAgent] = {}
    rows = []
    for q in progress_bar(questions, desc=dataset.name, unit="question"):
        agent = agents.setdefault(q.collection, RAGAgent(collection=q.collection))
        tools = agent.tools
        found = nodes.fused_search(tools, [q.item.question])
        ranked = [r.passage() for r in tools.reranker.rank(q.item.question, found).results]
        top = ranked[: settings.grader.passages]
        weight = evidence.weigh([q.item.question], top, tools.encode)
        answer = CITATION.sub(
            " ", nodes.extract(q.item.question, ranked[: settings.generator.passages], tools)
        )
        shape = answer_types.expected(q.item.question)
        rows.append(
            {
                "kind": q.kind,
                "answerable": q.item.answerable,
                "on_topic": weight.similarity >= settings.grader.min_similarity
                and not evidence.missing_names(q.item.question, top),
                "score": weight.score,
                "right": q.item.answerable and contains_answer(answer, q.item.answers),
                "shaped": shape is None or answer_types.holds(answer, shape, q.item.question),
                "pmi": pmi(q.item.question, top, tools.reranker),
            }
        )
    return rows


def pmi(question: str, passages: list[Passage], reranker: Reranker) -> float:
    """Per token, how much likelier the best of `passages` makes `question` under the ranker's
    model than an empty passage does (natural log)."""
    policy, chars = reranker.policy, reranker.config.max_passage_chars
    texts = ["", *(p.text for p in passages)]
    scores = reranker.backend.answer_logprobs(
        [policy.passage_messages(t, chars) for t in texts],
        [policy.likelihood_reply(question)] * len(texts),
    )
    return max(scores[1:]) - scores[0]


def with_signal(
    rows: list[dict], bar: float, keep: Callable[[dict], bool]
) -> dict[str, tuple[int, int]]:
    """`at_bar` with a question answered only where `keep(row)` also holds."""
    return at_bar([r | {"on_topic": r["on_topic"] and keep(r)} for r in rows], bar)


def at_bar(rows: list[dict], bar: float) -> dict[str, tuple[int, int]]:
    """Per kind: (right answers, or abstentions for a kind to abstain on: SQuAD's adversarial
    questions, and its cross-article ones asked without their article; questions)."""
    table: dict[str, tuple[int, int]] = {}
    for kind in sorted({r["kind"] for r in rows}):
        these = [r for r in rows if r["kind"] == kind]
        answered = [r["on_topic"] and r["score"] >= bar for r in these]
        if kind == "answerable":
            hits = sum(a and r["right"] for a, r in zip(answered, these, strict=True))
        else:
            hits = sum(not a for a in answered)
        table[kind] = (hits, len(these))
    return table


def calibrated_bar(squad: list[dict]) -> float:
    """The highest bar at which SQuAD's answerable questions keep every right answer."""
    right = at_bar(squad, BARS[0])["answerable"][0]
    return max(b for b in BARS if at_bar(squad, b)["answerable"][0] >= right)


def plot(curves: dict[str, list[float]], configured: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, values in curves.items():
        ax.plot(BARS, values, marker="o", label=label)
    ax.axvline(configured, color="grey", linestyle="--", label=f"grader.min_score {configured}")
    ax.set_xlabel("answer bar (grader.min_score)")
    ax.set_ylabel("% of the questions of the kind")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=150, help="SQuAD questions drawn")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    configured = load_settings().grader.min_score
    sets = {
        "SQuAD 2.0 dev": measure(common.SQUAD, args.sample, args.seed),
        "bench/docsqa": measure(DOCSQA, None, 0),
    }
    lines = [
        "# The answer bar: right answers kept, unanswerable questions abstained on",
        "",
        f"`.venv/bin/python bench/abstention.py --sample {args.sample} --seed {args.seed}`; "
        "embedded defaults, the graph's first round (search, rerank, grade, extract).",
        "Answerable: right answers; the other kinds (to abstain on): abstentions.",
        "",
    ]
    curves: dict[str, list[float]] = {}
    for name, rows in sets.items():
        kinds = list(at_bar(rows, BARS[0]))
        lines += [f"## {name}", "", "| bar | " + " | ".join(kinds) + " |"]
        lines.append("| ---: |" + " ---: |" * len(kinds))
        for bar in BARS:
            cells = at_bar(rows, bar)
            mark = " (configured)" if bar == configured else ""
            lines.append(
                f"| {bar:.2f}{mark} | "
                + " | ".join(f"{h / n:.1%} ({h}/{n})" for h, n in cells.values())
                + " |"
            )
            for kind, (h, n) in cells.items():
                curves.setdefault(f"{name}: {kind}", []).append(100 * h / n)
        lines.append("")
        signals = {"the bar alone": lambda r: True, "+ answer shape": lambda r: r["shaped"]}
        signals |= {f"+ PMI >= {b}": (lambda r, b=b: r["pmi"] >= b) for b in PMI_BARS}
        lines += [
            f"Other signals on top of the configured bar ({configured}):",
            "",
            "| signal | " + " | ".join(kinds) + " |",
            "| --- |" + " ---: |" * len(kinds),
        ]
        for label, keep in signals.items():
            cells = with_signal(rows, configured, keep)
            lines.append(
                f"| {label} | "
                + " | ".join(f"{h / n:.1%} ({h}/{n})" for h, n in cells.values())
                + " |"
            )
        lines.append("")
    rule = calibrated_bar(sets["SQuAD 2.0 dev"])
    lines.append(
        f"The highest bar keeping every right SQuAD answer: **{rule:.2f}**; configured: "
        f"{configured}, a margin below it for collections unlike SQuAD's "
        f"{at_bar(sets['SQuAD 2.0 dev'], BARS[0])['answerable'][1]} answerable questions. "
        "Plot: abstention.png."
    )
    plot(curves, configured)
    common.write_results(RESULTS, "\n".join(lines))


if __name__ == "__main__":
    main()
