"""What runs before any route: the API key check and the body size limit, both decided before
the body is parsed."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rearag.agent.serving.access import KeyRing
from rearag.agent.serving.errors import NO_KEY, error_response

# Reachable without a key: the page's own files and the API docs (they hold no data; the docs
# page takes the key in its Authorize dialog) and the health probe.
PUBLIC_PATHS = ("/", "/health", "/favicon.ico", "/docs", "/docs/oauth2-redirect", "/openapi.json")
PUBLIC_PREFIX = "/static/"


class BearerAuth:
    """Every route but the public ones needs `Authorization: Bearer KEY` of one of the
    server's keys (compared in constant time), checked before the body is read. The key's
    Grant goes to the route as `request.state.grant`."""

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIX):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        grant = self.keys.grant(token.strip()) if scheme.lower() == b"bearer" else None
        if grant is None:
            await error_response(401, NO_KEY, "invalid_api_key")(scope, receive, send)
            return
        scope.setdefault("state", {})["grant"] = grant
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
        too_big = error_response(
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
