"""What an HTTP client is told when something goes wrong: every error's status and code, in
one place. The error types live in `rearag.core.errors`; this maps them, by type and never by
their text, to a status and to OpenAI's error shape (which its clients turn into typed
exceptions). Logs name the failing step and the exception's class,
never its text (it may quote a question, a document or a key)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from rearag.core.errors import (
    BackendError,
    DiskFull,
    ModelNotServed,
    NotFoundError,
    ReadOnlyStorage,
    RearagError,
    StorageError,
    ThreadBusy,
    TooManyDocuments,
    UnsupportedField,
)
from rearag.core.text import validation_problems

log = logging.getLogger("rearag.serve")
INTERNAL = "internal error; the server log names its kind"

# The HTTP status and code of each kind of user-facing error, most specific first.
ERROR_STATUS: tuple[tuple[type[RearagError], int, str], ...] = (
    (ModelNotServed, 404, "model_not_found"),
    (NotFoundError, 404, "not_found"),
    (ThreadBusy, 409, "thread_busy"),
    (UnsupportedField, 400, "unsupported_parameter"),
    (TooManyDocuments, 400, "too_many_documents"),
    (DiskFull, 507, "insufficient_storage"),
    (ReadOnlyStorage, 503, "read_only_storage"),
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
    502: "a model backend or the conversations database failed",
    503: "too many connections, or a question on a thread in a read-only REARAG_HOME",
    504: "no answer within serve.request_timeout_s",
    507: "no space left where the server keeps conversations (the message names the path)",
}


ERROR_TYPES = {
    401: "authentication_error",
    404: "not_found_error",
    500: "server_error",
    502: "server_error",
    503: "server_error",
    504: "timeout_error",
    507: "server_error",
}


def error_body(status: int, message: str, code: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape, which its clients turn into typed exceptions."""
    kind = ERROR_TYPES.get(status, "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str


class ErrorResponse(BaseModel):
    """Every error's body (OpenAI's shape)."""

    error: ErrorDetail


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of the error statuses a route gives."""
    return {s: {"model": ErrorResponse, "description": ERROR_DOCS[s]} for s in statuses}


NO_KEY = "missing or wrong API key: send Authorization: Bearer KEY"


class ApiError(Exception):
    """An error as the client gets it: status, message, OpenAI error code, the field at fault."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def error_status(exc: RearagError) -> tuple[int, str]:
    """The HTTP status and error code of a user-facing error, decided by its type."""
    return next((status, code) for kind, status, code in ERROR_STATUS if isinstance(exc, kind))


def shown_message(exc: RearagError) -> str:
    """An error's message as a client sees it: a disk error without the server's folders."""
    return exc.public() if isinstance(exc, StorageError) else str(exc)


def api_error(exc: BaseException, what: str, timeout_s: float) -> ApiError:
    """What the client is told of an exception from `what` (a route's work): a RearagError by
    its type, a timeout as 504, anything else as a logged 500."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, TimeoutError):
        return ApiError(
            504, f"no answer within {timeout_s:g} s (serve.request_timeout_s)", "timeout"
        )
    if isinstance(exc, RearagError):
        status, code = error_status(exc)
        return ApiError(status, shown_message(exc), code, getattr(exc, "param", None))
    log.error("%s failed: %s", what, exc.__class__.__name__)
    return ApiError(500, INTERNAL, "internal_error")


def error_response(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(status, message, code, param), status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    """Every error a route raises, and FastAPI's own, in OpenAI's error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code, exc.param)

    @app.exception_handler(RearagError)
    async def _user_error(request: Request, exc: RearagError) -> JSONResponse:
        status, code = error_status(exc)
        return error_response(status, shown_message(exc), code, getattr(exc, "param", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(list(exc.errors()))
        return error_response(422, f"invalid request: {problems}", "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's only 400: a body it could not parse (too deeply nested JSON, say).
            return error_response(
                422, "invalid request: the body is not valid JSON", "invalid_request"
            )
        response = error_response(exc.status_code, str(exc.detail), "http_error")
        response.headers.update(exc.headers or {})  # 405's Allow
        return response
