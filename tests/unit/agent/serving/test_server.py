"""What `rearag serve --workers N` hands uvicorn resolves to the app factory."""

from uvicorn.importer import import_from_string

from rearag.agent.serving.server import WORKER_APP, app_from_env


def test_each_worker_imports_the_app_factory():
    assert import_from_string(WORKER_APP) is app_from_env
