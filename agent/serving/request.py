"""The base of every request body the server reads: its texts are checked before any field."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator


def lone_surrogate(value: Any, path: str = "") -> str | None:
    """Where in a request body a lone surrogate sits, if anywhere. JSON can carry one
    ("\\ud800"), no UTF-8 text can hold one, and a text fails only when an answer quoting it
    is encoded, so bodies are checked whole, up front."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            return f"{path or 'body'} (character {exc.start})"
    elif isinstance(value, dict):
        for key, item in value.items():
            found = lone_surrogate(key, path) or lone_surrogate(item, f"{path}.{key}".lstrip("."))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if found := lone_surrogate(item, f"{path}[{i}]"):
                return found
    return None


class ApiRequest(BaseModel):
    """A request body whose every text is valid Unicode."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if where := lone_surrogate(data):
            raise ValueError(f"{where} is not valid Unicode text (a lone surrogate)")
        return data
