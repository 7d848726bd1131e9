"""Running `rearag serve`: uvicorn with its limits, one process or `--workers N`, and the
server's log lines."""

from __future__ import annotations

import json
import logging
import os

from fastapi import FastAPI

from rearag.agent.serving import shared
from rearag.agent.serving.access import KeyRing
from rearag.agent.serving.app import create_app
from rearag.agent.serving.http_protocol import HeaderDeadlineProtocol
from rearag.core.config import SERVE_STATE_ENV, Settings

log = logging.getLogger("rearag.serve")
# What each of `--workers N` processes imports (uvicorn's "module:factory").
WORKER_APP = "rearag.agent.serving.server:app_from_env"


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
    # Checked before any model loads or worker starts: a bad key is one line, at once.
    auth = KeyRing.from_config(cfg, collections).describe()
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
        log_start(settings, collections, auth)
        uvicorn.run(app, host=cfg.host, port=cfg.port, **limits)
        return
    from rearag.tools.store import Store

    for name in collections:  # fail before spawning workers, with one clean error line
        Store(settings, name)
    os.environ[SERVE_STATE_ENV] = json.dumps(
        {"settings": settings.model_dump(mode="json"), "collections": collections}
    )
    log_start(settings, collections, f"{auth}, {workers} workers")
    uvicorn.run(
        WORKER_APP,
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


def log_start(settings: Settings, collections: list[str], notes: str) -> None:
    configure_logging()
    log.info(
        "rearag serving %s on http://%s:%d (chat page at /, API docs at /docs; %s)",
        ", ".join(collections),
        settings.serve.host,
        settings.serve.port,
        notes,
    )
    log.info("%s", shared.describe(settings))
