"""The server maps rearag's errors to HTTP statuses by their type, never by their text."""

import pytest

from rearag.agent.serving.errors import error_status
from rearag.core.errors import (
    BackendError,
    ConfigError,
    InvalidInputError,
    NotFoundError,
    RearagError,
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
    ],
)
def test_status_follows_the_error_type(error, status, code):
    assert error_status(error) == (status, code)
