"""`rearag serve` as a user runs it: a real subprocess on a free loopback port, every LLM node on
the scripted OpenAI-compatible server, spoken to by the OpenAI client, litellm and plain HTTP
(the chat page in a headless Chromium: test_web_page.py). One keyed server for the module."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import openai
import pytest
from fakes.cli import assert_one_line_error, rearag
from fakes.openai_server import Script, serve
from fakes.serving import (
    AUTH,
    KEY,
    MODEL,
    assert_error,
    chat_body,
    echo_router,
    free_port,
    ingest_docs,
    post,
    scripted_env,
    start_server,
)

from rearag.agent import prompts

TIMEOUT_S = 8  # serve.request_timeout_s, roomy for a loaded machine; "slowly" answers take longer
RUPTURE = "A volcano is a rupture in the crust"  # passage 1, echoed by the generator


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("serve")
    script = Script()
    httpd, base = serve(script)
    seen: list[str] = []
    script.default = echo_router(seen, slow_s=TIMEOUT_S + 3)
    env = {
        **scripted_env(tmp / "home", base, MODEL),
        "REARAG_SERVE__API_KEY": KEY,
        "REARAG_SERVE__REQUEST_TIMEOUT_S": str(TIMEOUT_S),
        "REARAG_SERVE__MAX_BODY_BYTES": "20000",
    }
    ingest_docs(tmp, tmp / "home", MODEL)
    port = free_port()
    log = tmp / "serve.log"
    proc = start_server([], env, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        # Warm-up (first litellm call, first query embedding), outside the tests' timings.
        for _ in range(3):
            warm = post(url, "/v1/chat/completions", chat_body("warm-up: lava?"), timeout=60)
            if warm.is_success:
                break
        yield SimpleNamespace(url=url, script=script, log=log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        httpd.shutdown()
    text = log.read_text()
    assert KEY not in text and "magma chamber" not in text  # no keys, no documents in logs


def client(server, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=60)


def ask(server, question: str, **kw) -> str:
    resp = client(server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], **kw
    )
    return resp.choices[0].message.content


def test_openai_client_gets_cited_answer(server):
    resp = client(server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Where does lava come from? O1"}]
    )
    text = resp.choices[0].message.content
    assert RUPTURE in text and "Q: Where does lava come from O1;" in text
    # Sources as ingested (`rearag ingest docs`), not the server's absolute paths.
    assert "\n\nSources:\n[1] Volcanoes (docs/volcano.md)" in text
    extra = resp.model_extra["rearag"]
    assert extra["citations"][0]["source"] == "docs/volcano.md"
    assert extra["sources"] and extra["reasoning"][0]["status"] == "ok"
    assert all(not p["source"].startswith("/") for p in extra["sources"] + extra["citations"])
    assert extra["citations"][0]["metadata"]["doc_id"] == "docs/volcano.md"
    assert resp.model == MODEL and resp.choices[0].finish_reason == "stop"


def test_streaming_sse_matches_the_plain_answer(server):
    stream = client(server).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Where does lava come from? S1"}],
        stream=True,
    )
    content, events, final = "", [], None
    for chunk in stream:
        content += chunk.choices[0].delta.content or ""
        extra = (chunk.model_extra or {}).get("rearag")
        if extra:
            events.append(extra.get("node", extra["event"]))
            final = extra if extra["event"] == "answer" else final
    assert events[:5] == ["rewrite", "retrieve", "rerank", "grade", "token"]
    assert events[-1] == "answer" and final["citations"][0]["number"] == 1
    assert content == ask(server, "Where does lava come from? S1")  # same text, streamed


def test_checked_sentences_stream_while_the_model_is_still_writing(server):
    """A plain OpenAI client sees the answer's first sentence in delta.content while the
    generator is still drafting the second (the scripted server sends a word every 50 ms),
    and the usage chunk it asked for at the end."""
    server.script.word_delay_s = 0.05
    try:
        stream = client(server).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Where does lava come from? TWO S2"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        kinds, pieces, chunks = [], [], list(stream)
    finally:
        server.script.word_delay_s = 0.0
    for chunk in chunks:
        extra = (chunk.model_extra or {}).get("rearag") or {}
        delta = chunk.choices[0].delta.content if chunk.choices else None
        if delta:
            kinds.append("content")
            pieces.append(delta)
        elif extra.get("event") in ("token", "answer"):
            kinds.append(extra["event"])
    first_content = kinds.index("content")
    # Draft tokens still arrived after the first sentence was sent: it did not wait for the end.
    assert "token" in kinds[first_content:] and kinds[-1] == "answer"
    assert RUPTURE in pieces[0] and pieces[0].endswith(" [1].") and "Q:" not in pieces[0]
    plain = client(server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Where does lava come from? TWO S2"}]
    )
    assert "".join(pieces) == plain.choices[0].message.content
    final = chunks[-1]
    assert final.choices == [] and final.usage.total_tokens > final.usage.prompt_tokens > 0
    counts = chunks[-2].model_extra["rearag"]["usage"]
    assert final.usage.prompt_tokens == counts["prompt_tokens"]
    assert final.usage.total_tokens == counts["total_tokens"]


def test_usage_counts_every_model_call(server):
    """The scripted server reports 11 prompt and 7 completion tokens a call: the answer's usage
    is their sum over the rewriter, reranker, grader and generator calls."""
    before = len(server.script.requests)
    resp = client(server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Where does lava come from? U1"}]
    )
    calls = len(server.script.requests) - before
    assert calls >= 4
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (11 * calls, 7 * calls)
    assert resp.usage.total_tokens == 18 * calls


def generator_requests(server, since: int) -> list[dict]:
    return [
        r
        for r in server.script.requests[since:]
        if r["messages"][0]["content"] == prompts.GENERATE_SYSTEM
    ]


def test_openai_fields_take_effect_or_are_refused(server):
    openai_client = client(server)
    assert openai_client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        openai_client.models.retrieve("nope")
    # The generator's settings come from the request.
    before = len(server.script.requests)
    raw = openai_client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[
            {"role": "developer", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Where does lava come from? F1"}],
            },
        ],
        max_tokens=50,
        temperature=0.7,
        stop=["STOP"],
        top_p=0.5,
        seed=3,
        extra_body={"évil\r\nX-Injected": 1},
    )
    assert "Q: Where does lava come from F1;" in raw.parse().choices[0].message.content
    [generator] = generator_requests(server, before)
    assert (generator["max_tokens"], generator["temperature"], generator["stop"]) == (
        50,
        0.7,
        ["STOP"],
    )
    # What takes no effect is said, not silently dropped.
    ignored = set(raw.headers["x-rearag-ignored"].split(", "))
    assert ignored == {"top_p", "seed", "1 other field(s)", "messages[0] (developer)"}
    assert "x-injected" not in raw.headers
    # What would change the reply and cannot be honoured is a 400 naming the field.
    refused = {
        "n": {"n": 2},
        "tools": {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        "response_format": {"response_format": {"type": "json_object"}},
        "messages[0].content[1].type": {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                    ],
                }
            ]
        },
        "messages[1].role": {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "tool", "content": "42", "tool_call_id": "c1"},
            ]
        },
    }
    for param, fields in refused.items():
        with pytest.raises(openai.BadRequestError) as caught:
            openai_client.chat.completions.create(
                **{"model": MODEL, "messages": [{"role": "user", "content": "q"}], **fields}
            )
        assert caught.value.param == param and caught.value.code == "unsupported_parameter"


def test_langchain_chat_model_streams_and_sees_citations_and_usage(server):
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        model=MODEL,
        base_url=server.url + "/v1",
        api_key=KEY,
        max_retries=0,
        include_response_headers=True,
        stream_usage=True,
    )
    message = chat.invoke("Where does lava come from? TWO LC1")
    assert RUPTURE in message.content
    headers = message.response_metadata["headers"]
    [cited] = json.loads(headers["x-rearag-citations"])
    assert cited["number"] == 1 and cited["source"].endswith("volcano.md")
    assert headers["x-rearag-mode"] == "generated"
    assert message.usage_metadata["input_tokens"] > 0
    chunks = list(chat.stream("Where does lava come from? TWO LC1"))
    texts = [c.content for c in chunks if c.content]
    assert len(texts) >= 2 and "".join(texts) == message.content
    whole = chunks[0]
    for c in chunks[1:]:
        whole += c
    assert whole.usage_metadata["total_tokens"] > whole.usage_metadata["input_tokens"] > 0


def test_docs_page_is_public_and_offers_authorize(server):
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(server.url + "/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"/v1/chat/completions", "/v1/models/{model_id}"} <= set(spec["paths"])
    # The API behind it still needs the key.
    assert_error(httpx.get(server.url + "/v1/models"), 401)


def test_litellm_client(server):
    import litellm

    resp = litellm.completion(
        model=f"openai/{MODEL}",
        api_base=server.url + "/v1",
        api_key=KEY,
        messages=[{"role": "user", "content": "Where does lava come from? L1"}],
    )
    assert "Q: Where does lava come from L1;" in resp.choices[0].message.content


def test_thread_memory_by_user_field_header_or_messages(server):
    ask(server, "Tell me about volcanoes T1", user="thread-a")
    second = ask(server, "and its lava? T1b", user="thread-a")
    assert "Q: and its lava T1b; earlier: Tell me about volcanoes T1" in second
    header = {"extra_headers": {"X-Thread-Id": "thread-b"}}
    ask(server, "Tell me about bread T2", **header)
    third = ask(server, "and the starter? T2b", **header)
    # thread-a's turns stay apart
    assert "Q: and the starter T2b; earlier: Tell me about bread T2)" in third
    # A stateless client sends the conversation itself.
    resp = client(server).chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "Tell me about chess T3"},
            {"role": "assistant", "content": "Chess is a board game."},
            {"role": "user", "content": [{"type": "text", "text": "which opening? T3b"}]},
        ],
    )
    assert (
        "Q: which opening T3b; earlier: Tell me about chess T3)" in resp.choices[0].message.content
    )


def test_search_rerank_models_health_docs(server):
    url = server.url
    local = [
        {"holds": "conversations", "shared": False, "reachable": True},
        {"holds": "chunks and vectors", "shared": False, "reachable": True},
    ]
    health = httpx.get(url + "/health").json()
    # Without a key, /health does not list the collections: GET /v1/models does, per key.
    assert health == {"status": "ok", "auth": True, "parts": local}
    assert [m.id for m in client(server).models.list().data] == [MODEL]
    hits = post(url, "/v1/search", {"query": "sourdough starter", "k": 2}).json()
    assert hits["model"] == MODEL and len(hits["results"]) == 2
    # Paths as ingested, the file's doc_id (its path) too: the server's layout stays private.
    meta = hits["results"][0]["metadata"]
    assert (meta["source"], meta["doc_id"]) == ("docs/bread.txt", "docs/bread.txt")
    body = {"model": "any", "query": "lava", "documents": ["a", "b", "c"], "top_n": 2}
    ranked = post(url, "/v1/rerank", body).json()  # shapes and clients: test_rerank_api.py
    assert [(r["index"], r["relevance_score"]) for r in ranked["results"]] == [(0, 1.0), (1, 2 / 3)]
    extra = ranked["rearag"]
    assert extra["policy"] == "rankgpt" and extra["windows"][0]["status"] == "ok"
    paths = httpx.get(url + "/openapi.json").json()["paths"]
    assert {"/v1/chat/completions", "/v1/search", "/v1/rerank", "/v1/models"} <= set(paths)


def test_bad_requests_get_json_errors_and_the_server_goes_on(server):
    url, path = server.url, "/v1/chat/completions"
    error = assert_error(post(url, path, chat_body("q"), headers={}), 401, "invalid_api_key")
    assert error["type"] == "authentication_error"
    assert_error(post(url, path, chat_body("q"), headers={"Authorization": "Bearer nope"}), 401)
    assert_error(httpx.get(url + "/v1/models"), 401)
    with pytest.raises(openai.AuthenticationError):
        client(server, key="wrong").chat.completions.create(model=MODEL, messages=[])
    # Oversized bodies, with a Content-Length and chunked without one.
    assert_error(post(url, path, chat_body("x" * 30_000)), 413, "request_too_large")

    def chunks():
        yield b'{"model": "serve-docs", "messages": [{"role": "user", "content": "'
        for _ in range(30):
            yield b"y" * 1000
        yield b'"}]}'

    chunked = httpx.post(
        url + path, content=chunks(), headers={**AUTH, "content-type": "application/json"}
    )
    assert_error(chunked, 413)
    # Malformed bodies.
    raw = httpx.post(
        url + path, content=b"{not json", headers={**AUTH, "content-type": "application/json"}
    )
    assert_error(raw, 422, "invalid_request")
    assert_error(post(url, path, {"model": MODEL}), 422)
    assert_error(post(url, path, {"model": MODEL, "messages": "hi"}), 422)
    assert_error(post(url, "/v1/search", {"query": ""}), 422)
    assert_error(post(url, "/v1/rerank", {"query": "q", "documents": ["a"] * 101}), 400)
    # Requests that parse but cannot be answered.
    assert_error(post(url, path, {**chat_body("q"), "model": "nope"}), 404, "model_not_found")
    assert "question is empty" in assert_error(post(url, path, chat_body("   ")), 400)["message"]
    assert "limit is 4000" in assert_error(post(url, path, chat_body("y" * 5000)), 400)["message"]
    assert_error(httpx.get(url + "/nowhere", headers=AUTH), 404)
    # None of that hurt the server.
    assert "Q: Where does lava come from E1;" in ask(server, "Where does lava come from? E1")


def test_timeout_is_504_while_other_requests_are_served(server):
    url, path = server.url, "/v1/chat/completions"
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(post, url, path, chat_body("slowly lava? D1"), timeout=60)
        slow_stream = pool.submit(
            post, url, path, chat_body("slowly lava? D2", stream=True), timeout=60
        )
        time.sleep(1)
        start = time.monotonic()
        assert httpx.get(url + "/health").status_code == 200
        assert time.monotonic() - start < 1.0  # the event loop is free while the agent works
        assert "Q: Where does lava come from D3;" in ask(server, "Where does lava come from? D3")
        assert_error(slow.result(), 504, "timeout")
        stream = slow_stream.result()
    # A stream has sent its 200 already: the error comes as an event, then the end.
    assert stream.status_code == 200 and '"code": "timeout"' in stream.text
    assert stream.text.endswith("data: [DONE]\n\n")


def test_serve_refuses_a_missing_collection(tmp_path):
    assert_one_line_error(
        rearag("serve", "-c", "missing-one", env={"REARAG_HOME": str(tmp_path)}), "does not exist"
    )


def test_concurrent_conversations_stay_apart(server):
    def conversation(i: int) -> tuple[int, str, str]:
        first = ask(server, f"Tell me about volcanoes C{i}", user=f"conc-{i}")
        return i, first, ask(server, f"and lava? C{i}b", user=f"conc-{i}")

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(conversation, range(6)))
    for i, first, second in results:
        assert f"Q: Tell me about volcanoes C{i}; earlier: )" in first
        assert f"Q: and lava C{i}b; earlier: Tell me about volcanoes C{i})" in second


def strings(value) -> list[str]:
    """Every key and string value in a JSON document, however deep."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


MODES = ("bm25", "dense", "hybrid")
RERANK_PATHS = ("/v1/rerank", "/v2/rerank")


def test_no_response_shows_the_servers_paths(server):
    """Issue 26: every field of every response shape, walked. The documents were ingested from
    TMP/docs; with serve.show_paths = "relative" no response may hold TMP (doc_id held it)."""
    url, secret = server.url, str(server.log.parent)
    bodies = [post(url, "/v1/search", {"query": "lava", "k": 5, "mode": m}).json() for m in MODES]
    question = chat_body("Where does lava come from?")
    bodies.append(post(url, "/v1/chat/completions", question, timeout=60).json())
    with httpx.stream(
        "POST", url + "/v1/chat/completions", json={**question, "stream": True}, headers=AUTH
    ) as resp:
        lines = [line.removeprefix("data: ") for line in resp.iter_lines() if line]
    bodies += [json.loads(line) for line in lines if line != "[DONE]"]
    rerank = {"query": "lava", "documents": ["Lava is molten.", "Bread."], "return_documents": True}
    bodies += [post(url, path, {**rerank, "model": MODEL}).json() for path in RERANK_PATHS]
    bodies += [httpx.get(url + path, headers=AUTH).json() for path in ("/v1/models", "/health")]
    bodies.append(post(url, "/v1/search", {"query": "lava", "model": "nope"}).json())  # an error
    assert any("docs/volcano.md" in s for b in bodies for s in strings(b))  # paths are shown
    leaked = [s for body in bodies for s in strings(body) if secret in s]
    assert leaked == []
