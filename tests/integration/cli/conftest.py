"""Fixtures of the CLI scenarios."""

from __future__ import annotations

import pytest
from fakes.openai_server import Script, serve


@pytest.fixture
def server():
    """The scripted OpenAI-compatible server (replying "hello" unless told otherwise): its
    Script and its base URL."""
    script = Script(default="hello")
    httpd, base = serve(script)
    yield script, base
    httpd.shutdown()
