"""`rearag serve` as a user runs it: a real subprocess on a free loopback port, every LLM node on
the scripted OpenAI-compatible server, spoken to by the OpenAI client, litellm, plain HTTP and
a headless Chromium. One keyed server for the module."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import openai
import pytest
from openai_server import Script, serve
from serving import echo_router, free_port, ingest_docs, scripted_env, start_server
from test_cli import assert_one_line_error, rearag

pytestmark = pytest.mark.slow

KEY = "sk-test-0123456789"
MODEL = "serve-docs"
TIMEOUT_S = 8  # serve.request_timeout_s, roomy for a loaded machine; SLOW answers take longer
AUTH = {"Authorization": f"Bearer {KEY}"}
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


def chat_body(question: str, **extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": question}], **extra}


def post(url: str, path: str, body: dict, headers: dict | None = None, **kw) -> httpx.Response:
    return httpx.post(url + path, json=body, headers=AUTH if headers is None else headers, **kw)


def client(server, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=60)


def ask(server, question: str, **kw) -> str:
    resp = client(server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], **kw
    )
    return resp.choices[0].message.content


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "code"}
    if code:
        assert error["code"] == code
    return error


def test_openai_client_gets_cited_answer(server):
    resp = client(server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Where does lava come from? O1"}]
    )
    text = resp.choices[0].message.content
    assert RUPTURE in text and "Q: Where does lava come from O1;" in text
    assert "\n\nSources:\n[1] Volcanoes (" in text
    extra = resp.model_extra["rearag"]
    assert extra["citations"][0]["source"].endswith("volcano.md")
    assert extra["sources"] and extra["reasoning"][0]["status"] == "ok"
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
    assert httpx.get(url + "/health").json() == {"status": "ok", "models": [MODEL], "auth": True}
    assert [m.id for m in client(server).models.list().data] == [MODEL]
    hits = post(url, "/v1/search", {"query": "sourdough starter", "k": 2}).json()
    assert hits["model"] == MODEL and len(hits["results"]) == 2
    assert hits["results"][0]["metadata"]["source"].endswith("bread.txt")
    body = {"query": "lava", "documents": ["a", "b", "c"], "doc_ids": ["x", "y", "z"], "top_k": 2}
    ranked = post(url, "/v1/rerank", body).json()
    assert [r["doc_id"] for r in ranked["results"]] == ["x", "y"]
    assert ranked["policy"] == "rankgpt" and ranked["windows"][0]["status"] == "ok"
    paths = httpx.get(url + "/openapi.json", headers=AUTH).json()["paths"]
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
        slow = pool.submit(post, url, path, chat_body("SLOW lava? D1"), timeout=60)
        slow_stream = pool.submit(
            post, url, path, chat_body("SLOW lava? D2", stream=True), timeout=60
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


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def test_web_page_in_headless_chromium(server, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # Not a skip: CI installs the browser (.ci/run), so a missing one is a broken setup.
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    flags = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
    for flag in (*flags, "--window-size=1100,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(server.url + "/")
        wait.until(lambda d: d.find_element(By.ID, "key-box").is_displayed())
        driver.find_element(By.ID, "api-key").send_keys(KEY)
        driver.find_element(By.ID, "show-reasoning").click()
        for question in ("Where does lava come from? W1", "and why? W2"):
            driver.find_element(By.ID, "question").send_keys(question)
            driver.find_element(By.ID, "send").click()
            wait.until(
                lambda d, q=question: any(
                    q in t.text for t in d.find_elements(By.CSS_SELECTOR, ".turn[data-done]")
                )
            )
        turns = driver.find_elements(By.CSS_SELECTOR, ".turn[data-done]")
        assert len(turns) == 2 and not driver.find_elements(By.CSS_SELECTOR, ".error")
        turn = turns[0]
        assert int(turn.get_attribute("data-tokens")) > 0  # the draft arrived token by token
        answer = turn.find_element(By.CSS_SELECTOR, ".answer").text
        assert RUPTURE in answer and "Q: Where does lava come from W1;" in answer
        assert "grade: ok" in turn.find_element(By.CSS_SELECTOR, ".steps").text
        source = turn.find_elements(By.CSS_SELECTOR, ".sources li")[0]
        assert source.find_element(By.TAG_NAME, "button").text.startswith("[1] Volcanoes")
        passage = source.find_element(By.CSS_SELECTOR, ".passage")
        assert not passage.is_displayed()
        source.find_element(By.TAG_NAME, "button").click()
        assert "magma chamber" in passage.text
        assert "rerank window [1-3] ok" in turn.find_element(By.CSS_SELECTOR, ".reasoning").text
        # The page keeps one thread: the follow-up saw the first question.
        follow_up = turns[1].find_element(By.CSS_SELECTOR, ".answer").text
        assert "earlier: Where does lava come from W1" in follow_up
        shot = tmp_path / "chat.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()
