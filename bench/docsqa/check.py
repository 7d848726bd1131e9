"""Check bench/docsqa: every answerable item's answers occur in its gold file.

Gold files are read as a user's doc folder holds them: ``.gz`` files are gunzipped and
``.html`` files reduced to their visible text (tags removed, entities unescaped). An answer
matches case-insensitively after collapsing whitespace; for HTML it must match both with tags
dropped and with tags turned into spaces, so it does not depend on how an extractor joins
text nodes. Prints counts on success; otherwise one line per problem and exit status 1.

Usage: python bench/docsqa/check.py [FOLDER]   (default: the folder holding this script)
"""

from __future__ import annotations

import gzip
import html
import json
import re
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

_SKIPPED_TAGS = {"script", "style"}


class _TextParser(HTMLParser):
    """Collects the visible text nodes of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def raw_text(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def visible_texts(path: Path) -> list[str]:
    """The normalised text(s) an answer must be found in: one per way of reading the file."""
    text = raw_text(path)
    if not re.search(r"\.html?(\.gz)?$", path.name):
        return [_norm(text)]
    parser = _TextParser()
    parser.feed(text)
    parser.close()
    return [_norm(html.unescape(sep.join(parser.chunks))) for sep in ("", " ")]


def fmt(path: Path) -> str:
    """The format label of a doc file, e.g. ``.md.gz``, ``.html`` or ``README.Debian``."""
    name = path.name
    base = name[:-3] if name.endswith(".gz") else name
    suffix = Path(base).suffix
    stem = base.split(".")[0]
    if suffix in {".md", ".markdown", ".rst", ".txt", ".html", ".htm"}:
        label = suffix
    elif base in {"README", "NEWS", "changelog", "FAQ"} or base.endswith(".Debian"):
        label = base
    elif stem in {"README", "NEWS", "changelog", "FAQ"}:
        label = stem + ".*"
    else:
        label = suffix or "(none)"
    return label + (".gz" if name.endswith(".gz") else "")


def check(root: Path) -> int:
    docs, qa = root / "docs", root / "qa.jsonl"
    problems: list[str] = []
    seen: set[str] = set()
    per_file: Counter[str] = Counter()
    cache: dict[str, list[str]] = {}
    answerable = unanswerable = 0
    for lineno, line in enumerate(qa.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"qa.jsonl:{lineno}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(f"{where}: not JSON ({err.msg})")
            continue
        if not isinstance(item, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        qid, question, answers = item.get("id"), item.get("question"), item.get("answers")
        if not isinstance(qid, str) or not qid:
            problems.append(f"{where}: missing id")
        elif qid in seen:
            problems.append(f"{where}: duplicate id {qid}")
        else:
            seen.add(qid)
            where = f"{where} ({qid})"
        if not isinstance(question, str) or not question.strip():
            problems.append(f"{where}: missing question")
        if not isinstance(answers, list) or not all(isinstance(a, str) and a for a in answers):
            problems.append(f"{where}: answers must be a list of non-empty strings")
            continue
        if not answers:
            unanswerable += 1
            if item.get("answerable") is not False or item.get("gold"):
                problems.append(f'{where}: unanswerable item needs "answerable": false, no gold')
            continue
        answerable += 1
        gold = item.get("gold")
        if not isinstance(gold, str) or not (docs / gold).is_file():
            problems.append(f"{where}: gold file not found: {gold}")
            continue
        per_file[gold] += 1
        if gold not in cache:
            cache[gold] = visible_texts(docs / gold)
        texts = cache[gold]
        for answer in answers:
            if not all(_norm(answer) in text for text in texts):
                problems.append(f"{where}: answer {answer!r} not in {gold}")
    files = sorted(p for p in docs.rglob("*") if p.is_file())
    for problem in problems:
        print(problem)
    if problems:
        return 1
    formats = Counter(fmt(p) for p in files)
    packages = {p.relative_to(docs).parts[0] for p in files}
    size = sum(p.stat().st_size for p in files)
    print(f"answerable: {answerable}  unanswerable: {unanswerable}  total: {len(seen)}")
    print(f"files: {len(files)} in {len(packages)} packages, {size / 1024:.0f} KiB on disk")
    most = max(per_file.values(), default=0)
    print(f"gold files used: {len(per_file)}  most questions on one file: {most}")
    print("formats: " + ", ".join(f"{k} {v}" for k, v in sorted(formats.items())))
    return 0


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    return check(root)


if __name__ == "__main__":
    sys.exit(main())
