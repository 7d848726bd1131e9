"""Fixtures of the policies tests."""

from __future__ import annotations

import pytest
from fakes.openai_server import Script, serve


@pytest.fixture
def scripted(home):
    script = Script()
    httpd, base = serve(script)
    yield script, base
    httpd.shutdown()
