"""The OpenAI shapes serialise to exactly the JSON clients got when they were built as dicts."""

from __future__ import annotations

from rearag.agent.serving.openai_api import (
    ChatCompletionChunk,
    ChunkChoice,
    answer_headers,
    completion,
)
from rearag.core.types import Answer, Citation, Passage, Usage

PASSAGE = Passage(id="d1#0", text="Lava is molten rock.", metadata={"source": "/srv/lava.md"})
ANSWER = Answer(
    question="What is lava?",
    answer="Lava is molten rock [1].",
    citations=[Citation(**PASSAGE.model_dump(exclude={"source", "title", "label"}), number=1)],
    sources=[PASSAGE],
    abstained=False,
    queries=["What is lava?"],
    attempts=1,
    invalid_citations=0,
    reasoning=[],
    errors=[],
    timings={"generate": 0.5},
    usage=Usage(prompt_tokens=10, completion_tokens=4),
)


def test_a_completion_is_the_openai_body_with_the_answer_in_rearag():
    body = completion("docs", ANSWER).model_dump()
    assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
    assert {k: v for k, v in body.items() if k not in ("id", "created")} == {
        "object": "chat.completion",
        "model": "docs",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": "Lava is molten rock [1].\n\nSources:\n[1] lava.md (/srv/lava.md)",
                },
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
        "rearag": ANSWER.model_dump(),
    }
    assert list(body) == ["id", "object", "created", "model", "choices", "usage", "rearag"]


def test_a_chunk_leaves_out_what_it_does_not_carry_but_keeps_a_null_finish_reason():
    first = ChatCompletionChunk(
        id="c", model="m", created=7, choices=[ChunkChoice(delta={"content": "x"})]
    )
    assert first.model_dump() == {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}],
    }
    step = ChatCompletionChunk(
        id="c", model="m", created=7, choices=[ChunkChoice(delta={})], rearag={"event": "step"}
    )
    assert step.model_dump()["rearag"] == {"event": "step"} and "usage" not in step.model_dump()
    usage = ChatCompletionChunk(id="c", model="m", created=7, choices=[], usage=ANSWER.usage)
    assert usage.model_dump() == {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
    }


def test_answer_headers_carry_mode_and_citations_as_ascii_json():
    headers = answer_headers(ANSWER)
    assert headers["X-Rearag-Mode"] == "generated"
    assert headers["X-Rearag-Citations"] == (
        '[{"number": 1, "id": "d1#0", "label": "lava.md", "source": "/srv/lava.md"}]'
    )
