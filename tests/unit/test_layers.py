"""The packages form layers that point one way: each imports only from the layers below it.
Checked on the source (every import statement, also inside functions), so a lazy import
cannot hide an upward dependency."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

# Package -> the folder holding it, and the rearag packages it may import besides itself.
FOLDERS = {
    "core": REPO / "rearag" / "core",
    "tools": REPO / "tools",
    "policies": REPO / "policies",
    "eval": REPO / "rearag" / "eval",
    "rl": REPO / "rl",
    "agent": REPO / "agent",
    "serving": REPO / "agent" / "serving",
    "cli": REPO / "rearag" / "cli",
}
ALLOWED = {
    "core": set(),
    "tools": {"core"},
    "policies": {"core", "tools"},
    "eval": {"core", "tools", "policies"},
    "rl": {"core", "tools", "policies", "eval"},
    "agent": {"core", "tools", "policies", "demos"},  # demos: the bundled corpus, data only
    "serving": {"core", "tools", "policies", "agent"},
    "cli": {"core", "tools", "policies", "eval", "rl", "agent", "serving", "demos"},
}


def modules(package: str) -> list[Path]:
    """The package's modules; the graph's (`agent`) without its serving subpackage."""
    found = FOLDERS[package].rglob("*.py")
    if package == "agent":
        return sorted(m for m in found if FOLDERS["serving"] not in m.parents)
    return sorted(found)


def rearag_imports(path: Path) -> set[str]:
    """The rearag packages a module imports ("core", "tools", …, and "serving" for
    `rearag.agent.serving`); `rearag` itself (its version) is not a layer."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "rearag.agent":  # `from rearag.agent import serving`
                names += [f"rearag.agent.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[:3] == ["rearag", "agent", "serving"]:
                found.add("serving")
            elif parts[0] == "rearag" and len(parts) > 1:
                found.add(parts[1])
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in FOLDERS:
        deps: set[str] = set()
        for module in modules(package):
            deps |= rearag_imports(module)
        graph[package] = deps - {package}
    return graph


def test_every_package_imports_only_downward():
    wrong = []
    for package in FOLDERS:
        for module in modules(package):
            for dep in rearag_imports(module) - ALLOWED[package] - {package}:
                wrong.append(f"{module.relative_to(REPO)} imports rearag.{dep}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_packages():
    graph = package_graph()
    done: set[str] = set()

    def visit(package: str, path: list[str]) -> None:
        assert package not in path, "cycle: " + " -> ".join([*path, package])
        if package in done:
            return
        for dep in graph.get(package, set()):
            visit(dep, [*path, package])
        done.add(package)

    for package in graph:
        visit(package, [])


def test_the_walker_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from rearag.agent.rag import RAGAgent\n    import rearag.rl.data\n"
        "    from rearag.agent.serving.app import create_app\n"
    )
    assert rearag_imports(module) == {"agent", "rl", "serving"}
    module.write_text("from rearag.agent import serving\n")
    assert rearag_imports(module) == {"agent", "serving"}


def test_the_graph_does_not_import_its_serving():
    graph = package_graph()
    assert "serving" not in graph["agent"]
    assert "serving" in graph["cli"]


def test_public_api_is_importable_and_import_rearag_stays_cheap():
    code = (
        "import sys, rearag\n"
        "heavy = [m for m in ('torch', 'chromadb', 'langgraph', 'transformers', 'litellm') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from rearag import RAGAgent, Reranker, Retriever, Settings, RearagError, as_tool\n"
        "from rearag.core.errors import NotFoundError\n"
        "assert issubclass(NotFoundError, RearagError)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
