"""The server maps rearag's errors to HTTP statuses by their type, never by their text."""

import pytest

from rearag.agent.serving.errors import api_error, error_status
from rearag.core.errors import (
    BackendError,
    ConfigError,
    InvalidInputError,
    ModelNotServed,
    NotFoundError,
    RearagError,
    ThreadBusy,
    TooManyDocuments,
    UnsupportedField,
)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (NotFoundError("collection 'x' does not exist: …"), 404, "not_found"),
        (NotFoundError("no trained policy 'p'"), 404, "not_found"),
        (BackendError("cannot reach the Chroma server"), 502, "backend_error"),
        (InvalidInputError("the question is empty: ask something"), 400, "invalid_request"),
        (ConfigError("invalid configuration: retriever.k"), 400, "invalid_request"),
        # The words that used to decide a 404 no longer do: the type does.
        (InvalidInputError("that path does not exist in the answer"), 400, "invalid_request"),
        (RearagError("anything else"), 400, "invalid_request"),
        (ModelNotServed("model 'x' is not served here"), 404, "model_not_found"),
        (ThreadBusy("an earlier question …"), 409, "thread_busy"),
        (TooManyDocuments("101 documents; the limit is 100"), 400, "too_many_documents"),
        (UnsupportedField("n", "n=2: …"), 400, "unsupported_parameter"),
    ],
)
def test_status_follows_the_error_type(error, status, code):
    assert error_status(error) == (status, code)


def test_what_the_client_is_told_of_any_exception():
    unsupported = api_error(UnsupportedField("stop", "at most 4 stop strings"), "chat", 30)
    assert (unsupported.status, unsupported.code, unsupported.param) == (
        400,
        "unsupported_parameter",
        "stop",
    )
    timeout = api_error(TimeoutError(), "chat", 2.5)
    assert (timeout.status, timeout.code) == (504, "timeout")
    assert timeout.message == "no answer within 2.5 s (serve.request_timeout_s)"
    # Anything else is a bug: the client learns nothing of its text.
    bug = api_error(KeyError("secret question text"), "chat", 30)
    assert (bug.status, bug.code) == (500, "internal_error") and "secret" not in bug.message
