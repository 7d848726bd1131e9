"""The routes open without a key: the chat page, its icon and the health probe (the page's
other files are mounted under /static by the app)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse

from rearag.agent.serving import shared
from rearag.agent.serving.deps import Agents, NeedsKey

WEB = Path(__file__).parents[1] / "web"
router = APIRouter()


@router.get(
    "/health",
    responses={503: {"description": "a part shared with other replicas does not answer"}},
)
async def health(agents: Agents, auth: NeedsKey) -> JSONResponse:
    """Whether this replica can answer, and each place it keeps conversations and chunks
    (`shared` ones are reached over the network by every replica). An open server lists its
    models; one with keys does not (this route needs none): `GET /v1/models` lists those a
    key sees."""
    parts = await asyncio.to_thread(shared.check, agents.settings)
    ok = all(p.reachable for p in parts)
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "auth": auth}
    if not auth:
        body["models"] = agents.served or []
    body["parts"] = [p.model_dump() for p in parts]
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    # The page shows document and model text: should any ever slip into markup, the
    # browser still runs no script and loads nothing that is not ours.
    policy = (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )
    headers = {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff"}
    return FileResponse(WEB / "index.html", headers=headers)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    # The SVG icon under the name browsers ask for unprompted (the page links it too).
    return FileResponse(WEB / "favicon.svg", media_type="image/svg+xml")
