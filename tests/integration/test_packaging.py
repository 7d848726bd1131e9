"""The wheel installs one `rearag` namespace: no top-level agent/tools/policies/rl module, so a
user's own `tools.py` and ours never shadow each other."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from conftest import REPO

SUBPACKAGES = ("agent", "tools", "policies", "rl")


def run(*args: str | Path, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


VENDORED = ("vendor/markdown-it/markdown-it.min.js", "vendor/markdown-it/LICENSE")


def test_wheel_in_fresh_venv_does_not_shadow_user_modules(tmp_path: Path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, REPO)
    [wheel] = dist.glob("rearag-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "rearag/demos/corpus/overview.md" in names  # `rearag demo` works from the wheel
    assert "rearag/demos/api.toml" in names
    # `rearag serve` serves its chat page, its icon and the vendored Markdown renderer.
    for page in ("index.html", "chat.js", "chat.css", "favicon.svg", *VENDORED):
        assert f"rearag/agent/serving/web/{page}" in names
    assert "rearag/rl/configs/grpo_cpu.toml" in names  # `rearag train grpo --config`
    # the reranker the defaults use ships as an adapter
    assert "rearag/tools/adapters/smollm2-135m-upr/adapter_model.safetensors" in names
    assert "rearag/rl/configs/accelerate_multi_gpu.yaml" in names
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {
        "rearag",
        f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info",
    }

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    py = venv / "bin" / "python"
    run(py, "-m", "pip", "install", "--no-deps", "--no-index", wheel)
    # Dependencies come from the test environment, appended after the venv's own site-packages
    # (a plain path entry: its .pth files, such as our editable finder, are not processed).
    site = Path(run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for name in SUBPACKAGES:
        assert not (site / name).exists() and not (site / f"{name}.py").exists()

    user = tmp_path / "userproject"
    user.mkdir()
    for name in SUBPACKAGES:
        (user / f"{name}.py").write_text(f"WHO = 'user {name}'\n")
    probe = (
        "import agent, tools, policies, rl, rearag\n"
        "import rearag.agent, rearag.tools, rearag.policies, rearag.rl\n"
        "import rearag.core.config, rearag.eval.qa, rearag.cli\n"
        "from rearag import RAGAgent, Reranker, Retriever, Settings, RearagError\n"
        "from rearag.tools.retriever import Retriever\n"
        "from rearag.core.config import load_settings\n"
        "assert [m.WHO for m in (agent, tools, policies, rl)] == "
        "['user agent', 'user tools', 'user policies', 'user rl']\n"
        f"assert rearag.tools.__file__.startswith({str(site)!r}), rearag.tools.__file__\n"
        "from rearag.agent.serving.routes.page import WEB\n"
        "assert (WEB / 'index.html').is_file(), WEB\n"
        "print('ok')\n"
    )
    assert run(py, "-c", probe, cwd=user).strip() == "ok"
    assert "Usage" in run(venv / "bin" / "rearag", "--help", cwd=user)
    assert "Usage" in run(py, "-m", "rearag", "--help", cwd=user)
