"""What routes receive, as typed dependencies read from `app.state` (set by `create_app`), so
a route can be served, and tested, by any app that sets the same state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rearag.agent.serving.access import OPEN, Grant
from rearag.agent.serving.errors import NO_KEY, ApiError
from rearag.agent.serving.registry import AgentRegistry
from rearag.agent.serving.worker import Conversations
from rearag.core.config import ServeConfig


def _registry(request: Request) -> AgentRegistry:
    return request.app.state.registry


def _serve_config(request: Request) -> ServeConfig:
    return request.app.state.registry.settings.serve


def _conversations(request: Request) -> Conversations:
    return request.app.state.conversations


def _auth(request: Request) -> bool:
    # Whether requests need a key (a test app that sets no keys is open).
    return bool(getattr(request.app.state, "keys", None))


def _grant(request: Request) -> Grant:
    """The request key's Grant, set by BearerAuth. A server without keys grants everything;
    on one with keys, a route reached without a checked key is refused, never open."""
    grant = getattr(request.state, "grant", None)
    if grant is not None:
        return grant
    if _auth(request):
        raise ApiError(401, NO_KEY, "invalid_api_key")
    return OPEN


Agents = Annotated[AgentRegistry, Depends(_registry)]
Serve = Annotated[ServeConfig, Depends(_serve_config)]
ConversationLocks = Annotated[Conversations, Depends(_conversations)]
Access = Annotated[Grant, Depends(_grant)]
NeedsKey = Annotated[bool, Depends(_auth)]
