"""Where ONNX Runtime spends the bundled embedder's time, operator by operator, in fp32 and in
int8: what int8 weights can speed up and what they leave as it is. Written to
bench/results/onnx_profile.md.

ONNX Runtime's own profiler (kernel time summed by operator type) on rearag's exports, one
thread, the first Cranfield documents as one list in batches of 32, longest first as rearag
sorts them.

    python bench/onnx_profile.py [--texts 96]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time
from pathlib import Path

import common  # first: the offline, one-thread environment before any model library
import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer

from rearag.core.config import load_settings
from rearag.tools.onnx_embedder import FILES, META, exported

DATA = common.DATA
RESULTS = common.RESULTS / "onnx_profile.md"
BATCH = 32


def profile(model: Path, folder: Path, texts: list[str], prefix: str) -> tuple[dict, float]:
    """Kernel milliseconds by operator type, and texts/s of the profiled run."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_profiling = True
    options.profile_file_prefix = prefix
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    meta = json.loads((folder / META).read_text())
    texts = sorted(texts, key=len, reverse=True)
    start = time.perf_counter()
    for i in range(0, len(texts), BATCH):
        enc = tokenizer(
            texts[i : i + BATCH],
            padding=True,
            truncation=True,
            max_length=meta["max_tokens"],
            return_tensors="np",
        )
        session.run(None, {n: enc[n].astype(np.int64) for n in meta["inputs"]})
    rate = len(texts) / (time.perf_counter() - start)
    events = json.loads(Path(session.end_profiling()).read_text())
    by_op: dict[str, float] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"] / 1000
    return by_op, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=96)
    args = parser.parse_args()
    with (DATA / "cranfield" / "corpus.jsonl").open(encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh][: args.texts]
    with tempfile.TemporaryDirectory(prefix="rearag-profile-") as tmp:
        settings = load_settings(home=Path(tmp))
        folder = exported(settings.embedder.model, settings.models_dir)
        runs = {
            name: profile(folder / FILES[name], folder, texts, f"{tmp}/{name}")
            for name in ("onnx", "onnx-int8")
        }
    lines = [
        "# Where ONNX Runtime spends the embedder's time",
        "",
        f"`python bench/onnx_profile.py` on {os.cpu_count()} cores, one thread, ONNX Runtime "
        f"{ort.__version__}: {len(texts)} Cranfield documents in batches of {BATCH}, kernel "
        "time by operator (profiler on, so slower than without). fp32 "
        f"{runs['onnx'][1]:.1f} texts/s, int8 {runs['onnx-int8'][1]:.1f} texts/s.",
        "",
        "| backend | operator | ms | share |",
        "| --- | --- | ---: | ---: |",
    ]
    for name, (by_op, _) in runs.items():
        total = sum(by_op.values())
        for op, ms in sorted(by_op.items(), key=lambda kv: -kv[1])[:6]:
            lines.append(f"| {name} | {op} | {ms:.0f} | {100 * ms / total:.1f} % |")
    lines += [
        "",
        "int8 weights speed up the weight products (MatMul, and the fused QKV projection inside",
        "Attention/QAttention); attention itself (scores, softmax, weighted sum), the layer",
        "norms and GELU stay fp32 and take what they took, which caps the int8 speed-up well",
        "below what its products gain.",
    ]
    common.write_results(RESULTS, "\n".join(lines))


if __name__ == "__main__":
    main()
