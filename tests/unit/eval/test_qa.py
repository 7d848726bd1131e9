"""`rearag eval qa`: the metrics on hand-built answers (computed by hand below), item loading and
selection, and the folder dataset with its cross-article collections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.cli import assert_one_line_error, rearag

from rearag.core.errors import InvalidInputError, NotFoundError
from rearag.core.types import Answer, Citation
from rearag.eval import qa
from rearag.eval.qa import QAItem, evaluate_qa, load_items, select_items
from rearag.tools.store import Store


def make_answer(
    question: str,
    text: str,
    citations: list[Citation] = (),
    *,
    abstained: bool = False,
    mode: str = "generated",
    invalid: int = 0,
) -> Answer:
    return Answer(
        question=question,
        answer=text,
        citations=list(citations),
        sources=list(citations),
        abstained=abstained,
        mode=mode,
        queries=[question],
        attempts=1,
        invalid_citations=invalid,
        reasoning=[],
        errors=[],
        timings={},
    )


def cite(number: int, text: str, doc_id: str) -> Citation:
    return Citation(number=number, id=f"chunk-{doc_id}", text=text, metadata={"doc_id": doc_id})


ROLLO = "Rollo led the Norse raiders and pirates."
# question -> (gold answers, gold paragraph, the answer given, seconds it takes)
CASES = {
    # EM 0, F1 1/3 (1 of 5 predicted tokens), contains; attributed by doc_id; 1/1 supported.
    "Where is Normandy?": (
        ["France"],
        "Normans:0",
        make_answer(
            "Where is Normandy?",
            "Normandy is a region in France [1].",
            [cite(1, "The Normans gave their name to Normandy, a region in France.", "Normans:0")],
        ),
        1.0,
    ),
    # EM 1, F1 1, contains; attributed by the cited text (another paragraph); 1/1 supported.
    "When were the Normans in Normandy?": (
        ["10th and 11th centuries", "in the 10th and 11th centuries"],
        "Normans:0",
        make_answer(
            "When were the Normans in Normandy?",
            "10th and 11th centuries [2]",
            [cite(2, "In the 10th and 11th centuries the Normans settled.", "Normans:1")],
        ),
        2.0,
    ),
    # EM 0, F1 0, not contained, not attributed; pairs: (s1, 1) supported, (s2, 1) not,
    # (s2, 3) not (no citation 3): 1/3.
    "Who was Rollo?": (
        ["a Viking leader"],
        "Normans:2",
        make_answer(
            "Who was Rollo?",
            "Rollo led the Norse raiders [1]. He swore fealty to Charles III [1] [3].",
            [cite(1, ROLLO, "Normans:5")],
            invalid=1,
        ),
        3.0,
    ),
    # Answerable but abstained: EM 0, F1 0, no pairs.
    "Who was Richard?": (
        ["Richard I"],
        "Normans:3",
        make_answer("Who was Richard?", "Not in the documents.", abstained=True, mode="abstained"),
        4.0,
    ),
    # Unanswerable, abstained: the right response.
    "Who gave their name to Normandy in the 1000s?": (
        [],
        "Normans:0",
        make_answer(
            "Who gave their name to Normandy in the 1000s?",
            "Not in the documents.",
            abstained=True,
            mode="abstained",
        ),
        5.0,
    ),
    # Unanswerable, answered (extractive): 1/1 supported.
    "What were the Vikings called in Iceland?": (
        [],
        "Normans:1",
        make_answer(
            "What were the Vikings called in Iceland?",
            "The Normans were Vikings [1].",
            [cite(1, "The Normans descended from Norse Vikings.", "Normans:1")],
            mode="extractive",
        ),
        10.0,
    ),
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeAgent:
    """Answers from CASES, taking their seconds on `clock`; remembers what it was asked."""

    def __init__(self, collection: str | None, clock: Clock, log: list) -> None:
        self.collection, self.clock, self.log = collection, clock, log

    def ask(self, question: str) -> Answer:
        self.log.append((question, self.collection))
        _, _, answer, seconds = CASES[question]
        self.clock.now += seconds
        return answer


def write_items(path: Path, questions) -> Path:
    path.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": q, "answers": CASES[q][0], "gold": CASES[q][1]})
            + "\n"
            for i, q in enumerate(questions)
        )
    )
    return path


def test_metrics_by_hand(settings, tmp_path, monkeypatch):
    clock, log, made = Clock(), [], []
    monkeypatch.setattr(qa, "perf_counter", clock)

    def factory(collection):
        made.append(collection)
        return FakeAgent(collection, clock, log)

    data = write_items(tmp_path / "qa.jsonl", CASES)
    report = evaluate_qa(data, settings, factory, progress=False)

    assert made == [None]  # one agent, on the default collection
    answerable, unanswerable = report.kinds["answerable"], report.kinds["unanswerable"]
    assert set(report.kinds) == {"answerable", "unanswerable"}
    assert (answerable.questions, answerable.answered, answerable.abstained) == (4, 3, 1)
    assert answerable.exact_match == pytest.approx(1 / 4)
    assert answerable.f1 == pytest.approx((1 / 3 + 1) / 4)
    assert answerable.contains_answer == pytest.approx(2 / 3)
    assert answerable.attribution == pytest.approx(2 / 3)
    assert answerable.abstention == pytest.approx(1 / 4)
    assert (unanswerable.questions, unanswerable.abstained) == (2, 1)
    assert unanswerable.abstention == 0.5 and unanswerable.exact_match is None
    assert (report.supported_pairs, report.citation_pairs) == (4, 6)
    assert report.citation_precision == pytest.approx(4 / 6)
    assert report.invalid_citations == 1
    assert report.modes == {"abstained": 2, "extractive": 1, "generated": 3}
    assert report.seconds_p50 == pytest.approx(3.5)  # seconds 1, 2, 3, 4, 5, 10
    assert report.seconds_p95 == pytest.approx(5 + 5 * 0.75)
    assert report.seconds_mean == pytest.approx(25 / 6)
    assert report.collections == ["default"]

    rows_file = Path(report.rows_file)
    assert rows_file.parent == settings.home / "runs" and rows_file.name.startswith("qa-default-")
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(6)]
    rollo = rows[2]
    assert (rollo["supported_pairs"], rollo["citation_pairs"]) == (1, 3)
    assert rollo["contains"] is False and rollo["attributed"] is False
    assert rollo["citations"] == [{"number": 1, "id": "chunk-Normans:5", "doc_id": "Normans:5"}]
    assert rows[3]["exact_match"] == 0.0 and rows[3]["contains"] is None  # abstained
    assert rows[4]["kind"] == "unanswerable" and rows[4]["f1"] is None


def test_unanswerable_alone_and_rows_path(settings, tmp_path):
    """An empty answers list is a question to abstain on, not a crash."""
    question = "Who gave their name to Normandy in the 1000s?"
    data = write_items(tmp_path / "qa.jsonl", [question])
    rows = tmp_path / "out" / "rows.jsonl"
    report = evaluate_qa(
        data,
        settings,
        lambda c: FakeAgent(c, Clock(), []),
        collection="mine",
        rows_file=rows,
        progress=False,
    )
    assert report.kinds["unanswerable"].abstention == 1.0 and "answerable" not in report.kinds
    assert report.citation_precision is None and report.collections == ["mine"]
    assert json.loads(rows.read_text())["collection"] == "mine"


def test_a_rows_path_that_cannot_be_written_fails_before_any_question(settings, tmp_path):
    data = write_items(tmp_path / "qa.jsonl", ["Where is Normandy?"])
    blocker = tmp_path / "file"
    blocker.write_text("")
    for rows, message in ((tmp_path, "is a folder"), (blocker / "rows.jsonl", "cannot write")):
        with pytest.raises(InvalidInputError, match=message):
            evaluate_qa(data, settings, lambda c: pytest.fail("asked"), rows_file=rows)


def test_percentile_interpolates():
    assert qa.percentile([4.0], 95) == 4.0
    assert qa.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5  # halfway between ranks 2 and 3


def test_selection_is_seeded():
    items = [QAItem(id=str(i), question=f"q{i}", answers=["a"]) for i in range(20)]
    first = select_items(items, sample=5, seed=3)
    assert first == select_items(items, sample=5, seed=3)
    assert [i.id for i in first] != [i.id for i in select_items(items, sample=5, seed=4)]
    assert [int(i.id) for i in first] == sorted(int(i.id) for i in first)  # file order
    assert select_items(items, sample=5, seed=3, limit=2) == first[:2]
    assert select_items(items, limit=3) == items[:3]
    assert select_items(items, sample=50) == items
    with pytest.raises(InvalidInputError, match="--sample must be at least 1"):
        select_items(items, sample=0)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"question": "q", "answers": ["a"]}\nnot json\n', "bad.jsonl:2"),
        ('{"answers": ["a"]}\n', "bad.jsonl:1"),
        ('{"question": "q", "answers": [], "answerable": true}\n', "bad.jsonl:1"),
        ("\n", "holds no questions"),
    ],
)
def test_load_errors_are_one_line(tmp_path, content, fragment):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    with pytest.raises(InvalidInputError) as err:
        load_items(bad)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(NotFoundError):
        load_items(tmp_path / "missing.jsonl")


@pytest.mark.slow  # the CLI in subprocesses
def test_cli_usage_errors(home, tmp_path):
    data = write_items(tmp_path / "qa.jsonl", ["Where is Normandy?"])
    for args in (["--limit", "0"], ["--sample", "0"]):
        proc = rearag("eval", "qa", str(data), *args)
        assert proc.returncode == 2
        assert_one_line_error(proc, "greater than or equal to 1")
    proc = rearag("eval", "qa", str(tmp_path), "-c", "mine")
    assert proc.returncode == 2
    assert_one_line_error(proc, "collection of its own")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": 1}\n')
    proc = rearag("eval", "qa", str(bad))
    assert proc.returncode == 1
    assert_one_line_error(proc, "bad.jsonl:1")


CORPUS = {
    "v0": ("Volcanoes", "Lava and ash erupt from a magma chamber beneath the volcano."),
    "v1": ("Volcanoes", "Shield volcanoes have gentle slopes built by fluid lava flows."),
    "b0": ("Sourdough", "Wild yeast and lactobacilli leaven sourdough bread dough."),
    "b1": ("Sourdough", "Bakers feed the starter with flour and water every day."),
}
FOLDER_ITEMS = [
    {
        "id": "a1",
        "question": "What erupts from a volcano?",
        "answers": ["lava and ash"],
        "gold": "v0",
    },
    {"id": "u1", "question": "What colour is shield lava?", "answers": [], "gold": "v1"},
    {"id": "a2", "question": "What leavens sourdough?", "answers": ["wild yeast"], "gold": "b0"},
]


def doc_ids(settings, collection: str) -> set[str]:
    store = Store(settings, collection)
    return {m["doc_id"] for m in store.collection.get(include=["metadatas"])["metadatas"]}


@pytest.mark.slow  # ingests with the real embedder
def test_folder_asks_cross_article_questions_without_their_article(settings, tmp_path):
    root = tmp_path / "mini-qa"
    root.mkdir()
    (root / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in CORPUS.items()
        )
    )
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in FOLDER_ITEMS))

    asked: list[tuple[str, str | None]] = []

    class Recorder:
        def __init__(self, collection):
            self.collection = collection

        def ask(self, question):
            asked.append((question, self.collection))
            return make_answer(question, "Not in the documents.", abstained=True, mode="abstained")

    report = evaluate_qa(root, settings, Recorder, progress=False)
    assert {k: v.questions for k, v in report.kinds.items()} == {
        "answerable": 2,
        "unanswerable": 1,
        "cross-article": 2,
    }
    assert report.kinds["cross-article"].abstention == 1.0
    main, *others = report.collections
    assert doc_ids(settings, main) == set(CORPUS) and len(others) == 2
    rows = [json.loads(line) for line in Path(report.rows_file).read_text().splitlines()]
    cross = {r["id"]: r["collection"] for r in rows if r["kind"] == "cross-article"}
    assert doc_ids(settings, cross["a1"]) == {"b0", "b1"}  # no Volcanoes
    assert doc_ids(settings, cross["a2"]) == {"v0", "v1"}  # no Sourdough
    assert all(c == main for q, c in asked[:3])

    again = evaluate_qa(root, settings, Recorder, sample=1, seed=0, progress=False)
    assert set(again.collections) <= set(report.collections)  # the fingerprinted ones, reused
    plain = evaluate_qa(root, settings, Recorder, cross_article=False, progress=False)
    assert "cross-article" not in plain.kinds and plain.collections == [main]
