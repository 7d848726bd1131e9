"""The litellm backend against a real OpenAI-compatible HTTP server on 127.0.0.1."""

from __future__ import annotations

import litellm
import pytest
from fakes.openai_server import Script, serve
from fakes.rankers import reverse_ranker

from rearag.policies import Reranker
from rearag.tools.litellm_backend import LiteLLMBackend

MSG = [[{"role": "user", "content": "hi"}]]


@pytest.fixture
def server():
    script = Script(default="hello")
    httpd, base = serve(script)
    yield script, base
    httpd.shutdown()


def backend(base: str, **kw) -> LiteLLMBackend:
    return LiteLLMBackend(
        "openai/test-model", api_base=base, backoff_s=0.01, **{"timeout_s": 5, **kw}
    )


def test_completion_with_token_accounting(server):
    script, base = server
    [c] = backend(base).generate(MSG, max_new_tokens=12, stop=["</answer>"])
    assert (c.text, c.prompt_tokens, c.completion_tokens, c.error) == ("hello", 11, 7, None)
    sent = script.requests[0]
    assert sent["max_tokens"] == 12 and sent["stop"] == ["</answer>"]
    assert sent["messages"] == MSG[0]


def test_retries_500_and_429_then_succeeds(server):
    script, base = server
    script.status(500).status(429).reply("third time")
    [c] = backend(base, max_retries=3).generate(MSG, 8)
    assert c.text == "third time" and c.error is None
    assert len(script.requests) == 3


def test_gives_up_after_retries_and_reports_the_error(server):
    script, base = server
    for _ in range(3):
        script.status(503)
    [c] = backend(base, max_retries=2).generate(MSG, 8)
    assert c.text == "" and c.error and "ServiceUnavailable" in c.error
    assert len(script.requests) == 3


@pytest.mark.slow  # waits out a 1 s client timeout
def test_timeout_is_retried(server):
    script, base = server
    script.sleep(3).reply("after timeout")
    [c] = backend(base, timeout_s=1, max_retries=1).generate(MSG, 8)
    assert c.text == "after timeout"


def test_fallback_model(server):
    script, base = server
    script.status(500).status(500).reply("from fallback")
    [c] = backend(base, max_retries=1, fallback_model="openai/backup").generate(MSG, 8)
    assert c.text == "from fallback"
    assert [r["model"] for r in script.requests] == ["test-model", "test-model", "backup"]


def test_concurrent_batch_keeps_order(server):
    script, base = server
    script.default = lambda messages: messages[0]["content"].upper()
    batch = [[{"role": "user", "content": f"q{i}"}] for i in range(8)]
    out = backend(base, concurrency=4).generate(batch, 8)
    assert [c.text for c in out] == [f"Q{i}" for i in range(8)]


def test_mock_response_unit_path():
    # litellm's own offline mock: the full response path without any server.
    c = litellm.completion(model="openai/x", messages=MSG[0], mock_response="<answer>[1]</answer>")
    assert c.choices[0].message.content == "<answer>[1]</answer>"


def test_reranker_over_http_and_failures_keep_input_order(server, settings):
    script, base = server
    script.default = reverse_ranker
    rr = Reranker(
        "rearag-reasoning",
        "litellm:openai/test-model",
        settings=settings,
        api_base=base,
        max_retries=1,
        timeout_s=5,
    )
    rr.backend.backoff_s = 0.01
    ranked = rr.rank("q", ["a", "b", "c"], ["x", "y", "z"])
    assert [r.doc_id for r in ranked.results] == ["z", "y", "x"]
    assert ranked.windows[0].reasoning == "the later passages look better"
    assert ranked.windows[0].completion_tokens == 7

    script.status(500).status(500)
    failed = rr.rank("q", ["a", "b", "c"], ["x", "y", "z"])
    assert [r.doc_id for r in failed.results] == ["x", "y", "z"]
    assert failed.status_counts == {"backend_error": 1}
    assert "InternalServerError" in failed.windows[0].error


def test_streaming_pieces_and_fallback_when_the_stream_fails(server):
    script, base = server
    script.reply("one two three four")
    *pieces, done = backend(base).stream(MSG[0], 16)
    assert len(pieces) == 4 and "".join(pieces) == "one two three four" == done.text
    assert script.requests[-1]["stream"] is True
    # The usage the server reports at the end of the stream.
    assert (done.prompt_tokens, done.completion_tokens, done.error) == (11, 4, None)
    script.status(500).reply("after retry")  # stream refused: generate() with retries
    *pieces, done = backend(base, max_retries=1).stream(MSG[0], 16)
    assert pieces == ["after retry"] and done.completion_tokens == 7
