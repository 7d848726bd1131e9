"""What every benchmark shares. Imported first (`import common`, before any model library):

- the offline, one-thread environment of the tests (tests/fakes/offline.py), set on import;
- the repository root on sys.path, so benchmarks reach the tests' fakes as `tests.fakes.NAME`
  (the scripted LLM server, the simulated reranker, the Chroma server);
- where things are (results, judged datasets, the demo corpus and questions about it), a
  REARAG_HOME for a run, the nearest-rank percentile, and the writing of a results file.

Benchmarks run as scripts, `python bench/NAME.py`: Python puts bench/ on sys.path, which is how
`import common` resolves.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # appended: the repository's folders never shadow a module

from tests.fakes.offline import go_offline  # noqa: E402

go_offline()

RESULTS = REPO / "bench" / "results"
DATA = REPO.parent / "shared" / "data"  # judged datasets, next to the repository
CRANFIELD = DATA / "cranfield"
SQUAD = DATA / "squad-dev"
DEMO_CORPUS = REPO / "demos" / "corpus"
# Questions the demo corpus answers.
DEMO_QUESTIONS = [
    "How do I use a Chroma server instead of the embedded store?",
    "What does the parser do when the model output is garbage?",
    "How many calls does the sliding window make for 100 passages?",
    "Where are chat conversations stored?",
    "Which policy needs a local model?",
]


def beir_parser(doc: str, default: Path = CRANFIELD) -> argparse.ArgumentParser:
    """The argument parser of a benchmark over a judged dataset: described by the first line of
    `doc` (the script's docstring), with `--dataset` (a BEIR folder)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=default)
    return parser


def check_beir(folder: Path) -> None:
    """Exits with one error line unless `folder` holds a BEIR corpus."""
    if not (folder / "corpus.jsonl").is_file():
        sys.exit(f"error: {folder}/corpus.jsonl not found: pass --dataset BEIR_FOLDER")


def bench_home(prefix: str = "rearag-bench-") -> Path:
    """$REARAG_HOME when it is set, else a new temporary folder."""
    return Path(os.environ.get("REARAG_HOME") or tempfile.mkdtemp(prefix=prefix))


def percentile(values: list[float], q: float) -> float:
    """The value at nearest rank `q` (0 to 1) of `values`, no interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _lscpu() -> list[str]:
    try:
        return subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=30
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return []


def cpu_name() -> str:
    """The CPU's model name, as `lscpu` gives it ("Model name")."""
    for line in _lscpu():
        if line.startswith("Model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_features() -> str:
    """What the CPU offers the bfloat16 and fp32 kernels (lscpu flags): AMX, AVX512-BF16, AVX-512
    or AVX2; CPUs of one model name ("AMD EPYC") differ in it, and speed ratios with it."""
    lines = [ln for ln in _lscpu() if ln.startswith("Flags")]
    if not lines:
        return "flags unknown"
    flags = set(lines[0].split(":", 1)[1].split())
    for flag, name in [
        ("amx_bf16", "AMX"),
        ("avx512_bf16", "AVX512-BF16, no AMX"),
        ("avx512f", "AVX-512, no BF16"),
        ("avx2", "AVX2 only"),
    ]:
        if flag in flags:
            return name
    return "no AVX2"


RUNS_APART = "\n\n---\n\n"  # between the runs of a report that keeps other CPUs


def write_results(path: Path, text: str, *, keep_other_cpus: bool = False) -> None:
    """A Markdown report: written to `path` (bench/results/…) with the CPU it was measured on as
    its last line, and printed. `keep_other_cpus`: the report's earlier runs on other CPUs stay
    below this one (a speed ratio that differs between CPU families shows all of them)."""
    cpu = f"CPU: {cpu_name()} ({os.cpu_count()} cores visible; {cpu_features()})."
    text = f"{text.rstrip()}\n\n{cpu}\n"
    print(text)
    if keep_other_cpus and path.exists():
        runs = path.read_text().split(RUNS_APART)
        text += "".join(RUNS_APART + r.strip() + "\n" for r in runs if not r.strip().endswith(cpu))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
