"""The GPU training recipe (bench/train_gpu.py, demos/train_gpu.sh) as far as a machine without
CUDA can take it: the refusals come first, in one line, and the CPU half (--build-data-only)
builds the data and the base model to carry to the GPU machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO
from fakes.beir import write_beir

SCRIPT = REPO / "bench" / "train_gpu.py"
DEMO = REPO / "demos" / "train_gpu.sh"


def run(command: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "REARAG_HOME": str(home), **env},
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", [[sys.executable, str(SCRIPT)], [str(DEMO)]])
def test_refuses_without_cuda_before_any_work(command, tmp_path):
    home = tmp_path / "home"
    line = one_error_line(run([*command, "--steps", "2"], home))
    assert "no CUDA GPU visible" in line and "--build-data-only" in line
    assert not home.exists()  # nothing was built or converted


def test_usage_errors_are_one_line(tmp_path):
    proc = run([sys.executable, str(SCRIPT), "--steps", "0"], tmp_path / "home")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: argument --steps: must be a positive integer, not '0' (see train_gpu.py --help)"
    ]


# A sitecustomize that makes `datasets` unimportable, as on a machine without it: the script
# runs as it always does, and Python runs this at start-up.
WITHOUT_DATASETS = """
import sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "datasets":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Absent())
"""


def test_names_a_missing_package_in_one_line(tmp_path):
    home, site = tmp_path / "home", tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WITHOUT_DATASETS)
    proc = run([sys.executable, str(SCRIPT), "--build-data-only"], home, PYTHONPATH=str(site))
    line = one_error_line(proc)
    assert "missing Python package(s) datasets:" in line
    assert not home.exists()


@pytest.mark.slow
def test_build_data_only_prepares_data_and_model_to_carry(tmp_path, models_home):
    topics = ["volcano", "bread", "tides", "chess", "comets", "violins"]
    docs = {f"{t}{i}": (t.title(), f"Fact {i} about {t}.") for t in topics for i in range(3)}
    queries = {f"q{i}": f"facts about {t}" for i, t in enumerate(topics)}
    qrels = [(f"q{i}", f"{t}{k}", k + 1) for i, t in enumerate(topics) for k in (0, 1)]
    dataset = write_beir(tmp_path, docs, queries, qrels)
    home, data = tmp_path / "home", tmp_path / "data"
    (home / "models").mkdir(parents=True)
    model = models_home / "models" / "smollm2-135m-instruct"
    (home / "models" / model.name).symlink_to(model)  # converted once per test session

    built = run(
        [sys.executable, str(SCRIPT), str(dataset), "--data", str(data), "--build-data-only"], home
    )
    assert built.returncode == 0, built.stderr
    manifest = json.loads((data / "manifest.json").read_text())
    assert (manifest["window"], manifest["max_passage_chars"]) == (10, 300)
    assert manifest["splits"]["train"]["rows"] > 0
    assert "ready to carry" in built.stdout and str(home / "models" / model.name) in built.stdout

    again = run([str(DEMO), str(dataset), "--data", str(data), "--build-data-only"], home)
    assert again.returncode == 0, again.stderr
    assert f"using {data}" in again.stdout  # existing data is used as it is, not rebuilt
    assert json.loads((data / "manifest.json").read_text()) == manifest
