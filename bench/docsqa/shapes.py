"""Answer shapes in a `rearag eval qa --rows` file: how many answers repeat a sentence, quote a
heading (a short piece without an end mark or a name in it), end on a cut fragment or keep
markup. Each offending piece is printed with its question's id; the last line is the counts.

    python bench/docsqa/shapes.py bench/results/docsqa-rows.jsonl
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter

DANGLING = {"a", "an", "the", "of", "to", "in", "for", "with", "and", "or"}
MARKUP = re.compile(r"<https?://|`_|\{\w+\}`|:\w+:`")
NAME = re.compile(r"--?\w|\w_\w|\w\.\w")


def shapes(rows: list[dict]) -> Counter[str]:
    """Counts of answers with each problem, printing every piece found."""
    found: Counter[str] = Counter()
    for row in rows:
        if row["abstained"]:
            continue
        # The cited pieces: the text before each run of [n] markers.
        pieces = [p.strip() for p in re.split(r"(?:\s*\[\d+\])+", row["answer"]) if p.strip()]
        keys = [" ".join(sorted(set(re.findall(r"\w+", p.lower())))) for p in pieces]
        if len(keys) != len(set(keys)):
            found["repeated"] += 1
            print("repeated", row["id"], row["answer"][:200])
        for piece in pieces:
            words = piece.split()
            short = len(words) <= 8 and not re.search(r"[.!?:;)\"'`]$", piece)
            if short and not NAME.search(piece):
                found["heading"] += 1
                print("heading", row["id"], repr(piece))
            if piece.endswith(",") or words[-1].lower() in DANGLING:
                found["fragment"] += 1
                print("fragment", row["id"], repr(piece[-80:]))
            if MARKUP.search(piece):
                found["markup"] += 1
                print("markup", row["id"], repr(piece[:120]))
    return found


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/docsqa/shapes.py ROWS.jsonl")
    with open(sys.argv[1], encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    found = shapes(rows)
    answered = sum(not r["abstained"] for r in rows)
    print(f"answered {answered}: " + ", ".join(f"{k} {found[k]}" for k in sorted(found)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
