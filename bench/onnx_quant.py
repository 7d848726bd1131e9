"""Which int8 quantisation of the bundled embedder keeps retrieval quality, and at what speed;
and how much the batch size matters to every backend. Written to bench/results/onnx_quant.md.

Each variant is ONNX Runtime's dynamic int8 quantisation of rearag's fp32 export with some
MatMuls left in fp32. Quality: dense retrieval of whole documents (title and text, cut at the
model's 256 tokens) over the Cranfield and squad-dev corpora, nDCG@10 against fp32 ONNX (which
gives torch's vectors). Speed: one thread, the first Cranfield documents as one list, medians.

    python bench/onnx_quant.py [--texts 235] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import common  # first: the offline, one-thread environment before any model library
import ir_measures
import numpy as np
import onnx
import onnxruntime as ort
from ir_measures import nDCG
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import AutoTokenizer

from rearag.core.config import load_settings
from rearag.eval.beir import load_beir, qrels_of
from rearag.tools.embedder import local_model_path
from rearag.tools.onnx_embedder import FILES, META, exported

DATA = common.DATA
RESULTS = common.RESULTS / "onnx_quant.md"
BATCH_SIZES = (4, 8, 16, 32, 64)

# Which MatMuls stay fp32: a predicate on the node name of rearag's optimised BERT export.
VARIANTS: dict[str, Callable[[str], bool]] = {
    "all MatMuls int8 (rearag's onnx-int8)": lambda n: False,
    "FFN output fp32": lambda n: "/output/dense" in n and "attention" not in n,
    "FFN input fp32": lambda n: "intermediate" in n,
    "attention output fp32": lambda n: "attention/output" in n,
    "fused QKV fp32": lambda n: n.startswith("Attention"),
    "layer 0 fp32": lambda n: "layer.0/" in n or n == "Attention_0",
    "layer 5 fp32": lambda n: "layer.5/" in n or n == "Attention_5",
    "FFN output of layers 0 and 5 fp32": lambda n: (
        ("layer.0/output/dense" in n) or ("layer.5/output/dense" in n)
    ),
}


class Encoder:
    def __init__(self, path: Path, folder: Path) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.meta = json.loads((folder / META).read_text())

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # as rearag does
        out = np.zeros((len(texts), 384), np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            enc = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.meta["max_tokens"],
                return_tensors="np",
            )
            [vectors] = self.session.run(
                None, {n: enc[n].astype(np.int64) for n in self.meta["inputs"]}
            )
            out[rows] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return out


def speed(encode: Callable[[list[str]], object], texts: list[str], repeats: int) -> float:
    encode(texts[:8])
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        encode(texts)
        runs.append(len(texts) / (time.perf_counter() - start))
    return statistics.median(runs)


def quality(encoder: Encoder, datasets: dict[str, tuple]) -> tuple[dict[str, float], np.ndarray]:
    scores, first = {}, None
    for name, (docs, queries, qrels) in datasets.items():
        doc_vectors = encoder.encode([f"{d['title']}\n{d['text']}".strip() for d in docs])
        query_vectors = encoder.encode([q["text"] for q in queries])
        first = doc_vectors if first is None else first
        similarity = query_vectors @ doc_vectors.T
        run = [
            ir_measures.ScoredDoc(q["_id"], docs[j]["_id"], float(similarity[i, j]))
            for i, q in enumerate(queries)
            for j in np.argsort(-similarity[i])[:10]
        ]
        scores[name] = ir_measures.calc_aggregate([nDCG @ 10], qrels, run)[nDCG @ 10]
    return scores, first


def load(root: Path) -> tuple:
    beir = load_beir(root)  # queries: the judged ones
    with beir.corpus.open(encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh if line.strip()]
    docs = [{"_id": str(d["_id"]), "title": d.get("title", ""), "text": d["text"]} for d in docs]
    queries = [{"_id": i, "text": t} for i, t in beir.queries.items()]
    return docs, queries, qrels_of(beir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=235)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    datasets = {name: load(DATA / name) for name in ("cranfield", "squad-dev")}
    texts = [d["text"] for d in datasets["cranfield"][0][: args.texts]]
    with tempfile.TemporaryDirectory(prefix="rearag-quant-") as tmp:
        settings = load_settings(home=Path(tmp))
        folder = exported(settings.embedder.model, settings.models_dir)
        fp32 = Encoder(folder / FILES["onnx"], folder)
        base_scores, base_vectors = quality(fp32, datasets)
        base_speed = speed(fp32.encode, texts, args.repeats)
        names = [
            n.name
            for n in onnx.load(str(folder / FILES["onnx"])).graph.node
            if n.op_type in ("MatMul", "Attention")
        ]
        rows = []
        for label, keep in VARIANTS.items():
            print(f"variant: {label}", file=sys.stderr)
            path = Path(tmp) / "variant.onnx"
            quantize_dynamic(
                folder / FILES["onnx"],
                path,
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=[n for n in names if keep(n)],
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            encoder = Encoder(path, folder)
            scores, vectors = quality(encoder, datasets)
            cosine = float(np.mean(np.sum(vectors * base_vectors, axis=1)))
            rows.append((label, scores, cosine, speed(encoder.encode, texts, args.repeats)))
        int8 = Encoder(folder / FILES["onnx-int8"], folder)
        from sentence_transformers import SentenceTransformer

        torch_model = SentenceTransformer(local_model_path(settings.embedder.model), device="cpu")
        batches = {
            "torch (sentence-transformers)": lambda b: speed(
                lambda t: torch_model.encode(t, batch_size=b), texts, args.repeats
            ),
            "onnx (fp32)": lambda b: speed(lambda t: fp32.encode(t, b), texts, args.repeats),
            "onnx-int8": lambda b: speed(lambda t: int8.encode(t, b), texts, args.repeats),
        }
        by_batch = {label: [run(b) for b in BATCH_SIZES] for label, run in batches.items()}
    write(rows, base_scores, base_speed, by_batch, args)


def write(rows, base_scores, base_speed, by_batch, args) -> None:
    lines = [
        "# int8 quantisation of the bundled embedder",
        "",
        f"`python bench/onnx_quant.py` on {os.cpu_count()} cores, one thread. Quality: dense "
        "retrieval of whole documents, nDCG@10 difference against fp32 ONNX (Cranfield "
        f"{base_scores['cranfield']:.4f}, squad-dev {base_scores['squad-dev']:.4f}); speed: "
        f"{args.texts} Cranfield texts, batch 32, median of {args.repeats}, against fp32 ONNX "
        f"({base_speed:.1f} texts/s).",
        "",
        "| int8, per channel, with | Cranfield Δ | squad-dev Δ | cosine to fp32 | speed-up |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, scores, cosine, texts_s in rows:
        deltas = [scores[n] - base_scores[n] for n in ("cranfield", "squad-dev")]
        lines.append(
            f"| {label} | {deltas[0]:+.4f} | {deltas[1]:+.4f} | {cosine:.4f} | "
            f"{texts_s / base_speed:.2f}x |"
        )
    lines += [
        "",
        "## Batch size (texts/s)",
        "",
        "| backend | " + " | ".join(f"batch {b}" for b in BATCH_SIZES) + " |",
        "| --- | " + " | ".join("---:" for _ in BATCH_SIZES) + " |",
    ]
    for label, values in by_batch.items():
        lines.append(f"| {label} | " + " | ".join(f"{v:.1f}" for v in values) + " |")
    lines += [
        "",
        "Read the ratios: the machine is shared. The retrieval goal is a drop of at most 0.005",
        "nDCG@10; bench/retrieval.py measures the chosen backends through the whole pipeline.",
    ]
    common.write_results(RESULTS, "\n".join(lines))


if __name__ == "__main__":
    main()
