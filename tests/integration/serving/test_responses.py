"""`POST /v1/responses` against a real `rearag serve`: the `openai` SDK's `responses.create`
(whole and streamed) and langchain-openai's `use_responses_api=True` (invoke and stream) get
the answer's citations as annotations pointing at real sources, a PDF's with its page."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import openai
import pytest
from fakes.docs import write_docs
from fakes.openai_server import Script, serve
from fakes.pdfs import write_pdf
from fakes.serving import echo_router, free_port, scripted_env, start_server

from rearag.core.config import load_settings
from rearag.tools.ingest import ingest
from rearag.tools.store import Store

MODEL = "responses-docs"
KITES = "How do box kites fly on a long tether line?"
KITE_TEXT = "Box kites fly on a long tether line in a steady wind"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("responses")
    home = tmp / "home"
    docs = write_docs(tmp / "docs")
    write_pdf(docs / "kites.pdf", KITE_TEXT + ".", title="Kite manual")
    ingest([docs], Store(load_settings(home=home), MODEL, create=True), progress=False)
    script = Script()
    httpd, base = serve(script)
    script.default = echo_router([])
    port = free_port()
    proc = start_server([], scripted_env(home, base, MODEL), port, tmp / "serve.log")
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        httpd.shutdown()


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=120)


def assert_points_at_the_kites_pdf(text: str, notes: list[dict]) -> None:
    assert notes, text
    for note in notes:
        assert note["type"] == "file_citation"
        at = note["index"] if "index" in note else note["file_index"]  # langchain's name for it
        assert text[at : at + 3] == f"[{note['number']}]"
    kites = [n for n in notes if n["filename"] == "docs/kites.pdf"]
    assert kites and kites[0]["title"] == "Kite manual" and kites[0]["pages"] == "p. 1"
    assert kites[0]["file_id"]  # the chunk's id
    assert "Kite manual (docs/kites.pdf, p. 1)" in text  # the Sources text names the page too


def test_responses_create_gets_citations_as_annotations(server):
    resp = client(server).responses.create(model=MODEL, input=KITES)
    assert resp.status == "completed" and resp.model == MODEL and resp.id.startswith("resp_")
    [part] = resp.output[0].content
    assert part.type == "output_text" and resp.output_text == part.text
    assert KITE_TEXT in part.text
    assert_points_at_the_kites_pdf(part.text, [a.model_dump() for a in part.annotations])
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    assert resp.model_extra["rearag"]["citations"]  # rearag's whole answer, as in chat


def test_a_streamed_response_sends_the_text_then_each_annotation(server):
    events = list(client(server).responses.create(model=MODEL, input=KITES, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-1] == "response.completed" and "response.output_text.done" in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    notes = [e.annotation for e in events if e.type == "response.output_text.annotation.added"]
    notes = [n if isinstance(n, dict) else n.model_dump() for n in notes]
    assert_points_at_the_kites_pdf(text, notes)
    final = events[-1].response
    assert final.output_text == text
    assert [a.model_dump() for a in final.output[0].content[0].annotations] == notes


def test_langchain_responses_api_gets_citations_in_content_blocks(server):
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        model=MODEL,
        base_url=server.url + "/v1",
        api_key="none",
        max_retries=0,
        use_responses_api=True,
    )
    message = chat.invoke(KITES)
    [block] = [b for b in message.content if b["type"] == "text"]
    assert_points_at_the_kites_pdf(block["text"], block["annotations"])
    streamed = None
    for chunk in chat.stream(KITES):
        streamed = chunk if streamed is None else streamed + chunk
    blocks = [b for b in streamed.content if b.get("type") == "text"]
    text = "".join(b.get("text", "") for b in blocks)
    notes = [a for b in blocks for a in b.get("annotations", [])]
    assert_points_at_the_kites_pdf(text, notes)


def test_earlier_turns_in_input_are_the_history(server):
    resp = client(server).responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "Tell me about kites R1"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Kites fly."}]},
            {"role": "user", "content": [{"type": "input_text", "text": KITES}]},
        ],
        instructions="be brief",
    )
    assert "earlier: Tell me about kites R1" in resp.output_text


def test_fields_without_effect_are_named_in_a_header(server):
    # Schemathesis found a field name a header cannot carry made a 500: such names are counted.
    body = {
        "model": MODEL,
        "input": [{"role": "system", "content": "be brief"}, {"role": "user", "content": KITES}],
        "store": True,
        "b\u00e4d\nname": 1,
        "top_p": 0.5,
        "max_output_tokens": 256.0,  # a whole number written as a float is a count
    }
    resp = httpx.post(server.url + "/v1/responses", json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-rearag-ignored"] == "store, top_p, 1 other field(s), input[0] (system)"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": []}, "input"),  # Schemathesis found this a 500
        ({"input": [{"role": "assistant", "content": "no question"}]}, "input"),
        ({"tools": [{"type": "web_search"}]}, "tools"),
        ({"text": {"format": {"type": "json_object"}}}, "text.format"),
        ({"text": {"format": "json"}}, "text.format"),  # was a 500
        (
            {"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]},
            "input[0].type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].type",
        ),
    ],
)
def test_what_rearag_cannot_honour_is_a_400_naming_it(server, extra, param):
    body = {"model": MODEL, "input": KITES, **extra}
    resp = httpx.post(server.url + "/v1/responses", json=body, timeout=60)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param


def test_the_openapi_description_lists_the_route(server):
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert {"200", "400", "404", "504"} <= set(paths["/v1/responses"]["post"]["responses"])
