"""`rearag serve`: the agent over HTTP (FastAPI + uvicorn), OpenAI-compatible.

    POST /v1/chat/completions   the agent, streamed (SSE) or not; `model` = a served collection
    POST /v1/search             Retriever.search
    POST /v1/rerank             Reranker.rank
    GET  /v1/models[/{id}], /health, /docs, and / (the chat page in agent/web/)

The graph is blocking (a local model holds a torch lock), so every agent call runs in a worker
thread and the event loop keeps answering. Questions on one thread run one at a time, so a
conversation's turns never interleave. Logs name routes, statuses and exception classes, never
the text of questions, documents or keys.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, FastAPI, Header, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rearag import __version__
from rearag.agent.serving import openai_api as api
from rearag.agent.serving import rerank_api
from rearag.agent.serving.http_protocol import HeaderDeadlineProtocol
from rearag.agent.rag import RAGAgent, describe_step, sqlite_checkpointer
from rearag.agent.serving.worker import Conversations, Event, ThreadBusy, run_in_worker
from rearag.core.config import SERVE_STATE_ENV, Settings
from rearag.core.errors import BackendError, NotFoundError, RearagError

log = logging.getLogger("rearag.serve")
WEB = Path(__file__).parent / "web"
# Reachable without a key: the page's own files and the API docs (they hold no data; the docs
# page takes the key in its Authorize dialog) and the health probe.
PUBLIC_PATHS = ("/", "/health", "/favicon.ico", "/docs", "/docs/oauth2-redirect", "/openapi.json")
PUBLIC_PREFIX = "/static/"
INTERNAL = "internal error; the server log names its kind"
# The HTTP status and code of each kind of user-facing error, most specific first.
ERROR_STATUS: tuple[tuple[type[RearagError], int, str], ...] = (
    (NotFoundError, 404, "not_found"),
    (ThreadBusy, 409, "thread_busy"),
    (BackendError, 502, "backend_error"),
    (RearagError, 400, "invalid_request"),
)

# What each error status means, for the OpenAPI description of the routes that give it.
ERROR_DOCS = {
    400: "the request cannot be answered as asked (the message says why)",
    401: "missing or wrong API key",
    404: "no such model (served collection)",
    409: "an earlier question on the same conversation thread is still running",
    413: "request body over serve.max_body_bytes",
    422: "the body is not JSON, or not of the documented shape",
    500: "internal error",
    502: "a model backend failed",
    504: "no answer within serve.request_timeout_s",
}
T = TypeVar("T")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": api.ErrorResponse, "description": ERROR_DOCS[s]} for s in statuses}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def _error(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(api.error_body(status, message, code, param), status, headers=headers)


class BearerAuth:
    """Every route but the public ones needs `Authorization: Bearer KEY`, compared in
    constant time. Checked before the body is read."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIX):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.key):
            message = "missing or wrong API key: send Authorization: Bearer KEY"
            await _error(401, message, "invalid_api_key")(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for a body over `limit` bytes, decided before anything parses it: from
    Content-Length when sent, else by counting while reading (chunked uploads)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_big = _error(
            413,
            f"request body over {self.limit} bytes (serve.max_body_bytes)",
            "request_too_large",
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await too_big(scope, receive, send)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await too_big(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            # The app reads the buffered body once; later calls (disconnect watch) go through.
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


def create_app(settings: Settings, collections: list[str] | None = None) -> FastAPI:
    """The app, with one agent per collection (each is a `model`), all sharing one checkpointer.
    A missing collection raises RearagError here, before the server starts."""
    names = list(dict.fromkeys(collections or [settings.collection]))
    checkpointer = sqlite_checkpointer(settings)
    agents = {
        name: RAGAgent(settings, collection=name, checkpointer=checkpointer) for name in names
    }
    cfg = settings.serve
    conversations = Conversations()

    # With a key, every API route declares Bearer auth, so the docs page offers Authorize; the
    # check itself is BearerAuth's, before a route runs.
    bearer = [Security(HTTPBearer(auto_error=False))] if cfg.api_key else None
    app = FastAPI(
        title="rearag",
        version=__version__,
        summary="Agentic RAG with a reasoning reranker, OpenAI-compatible.",
    )
    # The API's routes; /health, the page and the docs are public (PUBLIC_PATHS).
    routes = APIRouter(dependencies=bearer, responses=errors(401) if cfg.api_key else None)
    app.add_middleware(BodyLimit, limit=cfg.max_body_bytes)
    if cfg.api_key:
        app.add_middleware(BearerAuth, key=cfg.api_key)  # added last: runs first

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.code, exc.param)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Locations and reasons only: the rejected input may be a document or a secret.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        return _error(422, f"invalid request: {problems}", "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's only 400: a body it could not parse (too deeply nested JSON, say).
            return _error(422, "invalid request: the body is not valid JSON", "invalid_request")
        response = _error(exc.status_code, str(exc.detail), "http_error")
        response.headers.update(exc.headers or {})  # 405's Allow
        return response

    def agent_for(model: str | None) -> RAGAgent:
        if model is None:
            return next(iter(agents.values()))
        if model not in agents:
            raise ApiError(
                404,
                f"model {model[:100]!r} is not served here: use one of {', '.join(agents)}",
                "model_not_found",
            )
        return agents[model]

    async def blocking(what: str, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker thread under the request timeout. On timeout the thread is
        abandoned (Python cannot stop it) and finishes in the background; it is a daemon, so
        it never holds up a shutdown."""

        def run() -> Iterator[Event]:
            yield "result", {"value": fn(*args)}

        timeout = cfg.request_timeout_s
        try:
            async with aclosing(run_in_worker(run, None, timeout, timeout)) as events:
                [(_, result)] = [event async for event in events]
        except Exception as exc:
            raise api_error_of(what, exc, timeout) from None
        return result["value"]

    def answer_events(
        run: Callable[[], Iterator[Event]], thread: str | None
    ) -> AsyncIterator[Event]:
        """The agent's events for one question: after any earlier question on its thread
        (waiting up to the request timeout), then within the request timeout."""
        lock = conversations.lock(thread)
        return run_in_worker(shown(run), lock, cfg.request_timeout_s, cfg.request_timeout_s)

    def shown(run: Callable[[], Iterator[Event]]) -> Callable[[], Iterator[Event]]:
        """The events with the answer's sources as serve.show_paths says."""
        if cfg.show_paths == "absolute":
            return run

        def relative() -> Iterator[Event]:
            for node, update in run():
                if node == "answer":
                    update = {"answer": api.relative_sources(update["answer"])}
                yield node, update

        return relative

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": list(agents), "auth": bool(cfg.api_key)}

    @routes.get("/v1/models")
    async def models() -> api.ModelList:
        return api.ModelList(data=[api.ModelCard(id=name) for name in agents])

    @routes.get("/v1/models/{model_id}", responses=errors(404))
    async def model(model_id: str) -> api.ModelCard:
        agent_for(model_id)  # 404 for a collection not served here
        return api.ModelCard(id=model_id)

    @routes.post(
        "/v1/chat/completions",
        response_model=None,
        responses=errors(400, 404, 409, 413, 422, 500, 502, 504),
    )
    async def chat(
        body: api.ChatRequest,
        x_thread_id: Annotated[str | None, Header(max_length=200)] = None,
    ) -> JSONResponse | StreamingResponse:
        """Answer the latest user message with citations. The conversation is remembered per
        thread: the X-Thread-Id header, else the `user` field; without either, the earlier
        messages of the request are the history. Streamed, the answer's sentences arrive in
        `delta.content` as each passes the grounding check; the pipeline's progress (steps, the
        draft's tokens) in the `rearag` field."""
        try:
            body.check_supported()
        except api.Unsupported as exc:
            raise ApiError(400, str(exc), "unsupported_parameter", exc.param) from None
        agent = agent_for(body.model)
        try:
            question = agent.check_question(body.question())
        except RearagError as exc:
            raise _user_error(exc) from None
        thread = x_thread_id or body.user or None
        history = None if thread else body.history()
        ignored = body.ignored()
        headers = {"X-Rearag-Ignored": ", ".join(ignored)} if ignored else {}
        run = functools.partial(
            agent.stream,
            question,
            thread,
            tokens=body.stream,
            history=history,
            generation=body.generation(),
        )
        if body.stream:
            events = _sse(
                answer_events(run, thread), body.model, body.include_usage, cfg.request_timeout_s
            )
            return ClosingStream(
                events,
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
            )
        answer = None
        try:
            async for node, update in answer_events(run, thread):
                if node == "answer":
                    answer = update["answer"]
        except Exception as exc:
            raise api_error_of("chat", exc, cfg.request_timeout_s) from None
        if answer is None:  # the graph's promise: its stream ends with the answer
            log.error("chat: the agent's stream ended without an answer")
            raise ApiError(500, INTERNAL, "internal_error")
        headers.update(api.answer_headers(answer))
        return JSONResponse(api.completion(body.model, answer), headers=headers)

    @routes.post("/v1/search", responses=errors(400, 404, 413, 422, 500, 502, 504))
    async def search(body: api.SearchRequest) -> api.SearchResponse:
        """Search a collection: `Retriever.search(query, k, mode)`."""
        agent = agent_for(body.model)
        hits = await blocking("search", agent.tools.retriever.search, body.query, body.k, body.mode)
        if cfg.show_paths == "relative":
            hits = [api.relative_source(hit) for hit in hits]
        return api.SearchResponse(model=body.model or next(iter(agents)), results=hits)

    # Both paths: the cohere SDK's Client calls v1, its ClientV2 and LiteLLM's cohere/ call v2.
    # exclude_none: a result without its document has no "document" key, as clients expect.
    rerank_errors = errors(400, 413, 422, 500, 502, 504)

    @routes.post("/v1/rerank", response_model_exclude_none=True, responses=rerank_errors)
    @routes.post("/v2/rerank", response_model_exclude_none=True, responses=rerank_errors)
    async def rerank(body: rerank_api.RerankRequest) -> rerank_api.RerankResponse:
        """Rerank documents with the configured policy (`Reranker.rank`), in the Cohere and
        Jina rerank shape; `model` may be any name."""
        if len(body.documents) > cfg.max_documents:
            raise ApiError(
                400,
                f"{len(body.documents)} documents; the limit is {cfg.max_documents} "
                "(serve.max_documents)",
                "too_many_documents",
            )
        try:
            texts = body.texts()
        except RearagError as exc:
            raise _user_error(exc) from None
        reranker = agent_for(None).tools.reranker
        ranked = await blocking("rerank", reranker.rank, body.query, texts)
        return rerank_api.rerank_response(body, ranked)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        # The page shows document and model text: should any ever slip into markup, the
        # browser still runs no script and loads nothing that is not ours.
        policy = (
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'"
        )
        headers = {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff"}
        return FileResponse(WEB / "index.html", headers=headers)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        # The SVG icon under the name browsers ask for unprompted (the page links it too).
        return FileResponse(WEB / "favicon.svg", media_type="image/svg+xml")

    app.include_router(routes)
    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app


def _timeout_message(seconds: float) -> str:
    return f"no answer within {seconds:g} s (serve.request_timeout_s)"


def error_status(exc: RearagError) -> tuple[int, str]:
    """The HTTP status and error code of a user-facing error, decided by its type."""
    return next((status, code) for kind, status, code in ERROR_STATUS if isinstance(exc, kind))


def _user_error(exc: RearagError) -> ApiError:
    status, code = error_status(exc)
    return ApiError(status, str(exc), code)


def api_error_of(what: str, exc: Exception, timeout: float) -> ApiError:
    """What the client is told of an exception from the agent's work."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, TimeoutError):
        return ApiError(504, _timeout_message(timeout), "timeout")
    if isinstance(exc, RearagError):
        return _user_error(exc)
    log.error("%s failed: %s", what, exc.__class__.__name__)
    return ApiError(500, INTERNAL, "internal_error")


class ClosingStream(StreamingResponse):
    """A streaming response that closes its events however the response ends (Starlette
    leaves the iterator to the garbage collector when sending fails or the client leaves), so
    a question still waiting for its conversation thread gives up at once."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]


async def _sse(
    events: AsyncIterator[Event], model: str, include_usage: bool, timeout: float
) -> AsyncIterator[bytes]:
    """The answer as OpenAI chunks. `delta.content` carries the answer's text as each sentence
    of the draft passes the grounding check, then whatever only the final answer decides (an
    extracted answer or the abstention, the sources list), so a client that joins the content
    deltas gets exactly the non-streaming message. Progress goes in the `rearag` field: each
    finished node, the draft's unchecked tokens, and last the whole answer. Every exit ends
    with an error event where one is due, then `[DONE]`."""
    cid = api.completion_id()

    def data(body: dict[str, Any]) -> bytes:
        # Encoded here, where a failure is an error event: text that cannot be UTF-8 (a lone
        # surrogate) would otherwise break the stream outside this generator.
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode(errors="replace")

    yield data(api.chunk(cid, model, {"role": "assistant", "content": ""}))
    sent = ""
    try:
        async for node, update in events:
            if node == "content":
                sent += update["text"]
                yield data(api.chunk(cid, model, {"content": update["text"]}))
            elif node == "token":
                extra = {"event": "token", "text": update["text"]}
                yield data(api.chunk(cid, model, {}, extra=extra))
            elif node == "answer":
                answer = update["answer"]
                text = api.message_text(answer)
                if not text.startswith(sent):  # the graph's promise; never silently garbled
                    log.error("chat stream: the streamed text is not the answer's start")
                elif text != sent:
                    yield data(api.chunk(cid, model, {"content": text[len(sent) :]}))
                extra = {"event": "answer", **answer.model_dump()}
                yield data(api.chunk(cid, model, {}, "stop", extra=extra))
                if include_usage:
                    yield data(api.usage_chunk(cid, model, answer))
            else:
                extra = {"event": "step", "node": node, "text": describe_step(node, update)}
                yield data(api.chunk(cid, model, {}, extra=extra))
    except Exception as exc:
        err = api_error_of("chat stream", exc, timeout)
        yield data(api.error_body(err.status, err.message, err.code))
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    yield b"data: [DONE]\n\n"


def app_from_env() -> FastAPI:
    """The app in each of `--workers N` processes, from the settings the parent handed over."""
    state = json.loads(os.environ[SERVE_STATE_ENV])
    configure_logging()
    settings = Settings(**state["settings"])
    HeaderDeadlineProtocol.header_timeout_s = settings.serve.header_timeout_s
    return create_app(settings, state["collections"])


def run_server(settings: Settings, collections: list[str], workers: int = 1) -> None:
    import uvicorn

    cfg = settings.serve
    auth = "API key required" if cfg.api_key else "no API key"
    HeaderDeadlineProtocol.header_timeout_s = cfg.header_timeout_s
    limits = {
        "http": HeaderDeadlineProtocol,
        "limit_concurrency": cfg.max_connections,
        "timeout_keep_alive": cfg.keep_alive_s,
        "timeout_graceful_shutdown": cfg.shutdown_timeout_s,
        "log_level": "info",
    }
    if workers == 1:
        app = create_app(settings, collections)  # a missing collection fails here, cleanly
        log_start(cfg.host, cfg.port, collections, auth)
        uvicorn.run(app, host=cfg.host, port=cfg.port, **limits)
        return
    from rearag.tools.store import Store

    for name in collections:  # fail before spawning workers, with one clean error line
        Store(settings, name)
    os.environ[SERVE_STATE_ENV] = json.dumps(
        {"settings": settings.model_dump(mode="json"), "collections": collections}
    )
    log_start(cfg.host, cfg.port, collections, f"{auth}, {workers} workers")
    uvicorn.run(
        "rearag.agent.serving.app:app_from_env",
        factory=True,
        host=cfg.host,
        port=cfg.port,
        workers=workers,
        **limits,
    )


def configure_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    # litellm logs every call at INFO; the access log already has one line per request.
    logging.getLogger("LiteLLM").setLevel(logging.WARNING)


def log_start(host: str, port: int, collections: list[str], notes: str) -> None:
    configure_logging()
    log.info(
        "rearag serving %s on http://%s:%d (chat page at /, API docs at /docs; %s)",
        ", ".join(collections),
        host,
        port,
        notes,
    )
