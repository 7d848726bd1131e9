"""Sentence-transformers models on ONNX Runtime: exported once from the torch model into
HOME/models, then run without torch (measured in bench/results/retrieval.md).

`onnx` gives the torch model's own vectors (cosine 1.0000 on the probes checked at export);
`onnx-int8` quantises the weights to int8, per output channel (per tensor lost more: cosine
~0.93 with torch against ~0.994), so its vectors are its own and collections record it.

sentence-transformers' `backend="onnx"` would need optimum-onnx, whose releases pin
transformers < 4.58 while sentence-transformers 6 needs transformers 5; the export is done here
with torch.onnx and ONNX Runtime's transformer optimizer instead (needs the `onnx` package).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rearag.core.config import EmbedderConfig
from rearag.core.errors import BackendError
from rearag.tools.embedder import PROBES, local_model_path, resolve_threads

FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
META = "rearag-onnx.json"  # written last: its presence means the export is complete


def export_folder(model: str, models_dir: Path) -> Path:
    return models_dir / (re.sub(r"[^a-zA-Z0-9._-]+", "-", model).strip("-") + ".onnx")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The tracer's and the quantiser's warnings speak of graph details a user cannot act on."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def exported(model: str, models_dir: Path) -> Path:
    """The folder holding the ONNX exports of `model` and its tokenizer, made on first use.
    Written beside the target and renamed: a killed or concurrent export leaves nothing half
    written behind."""
    target = export_folder(model, models_dir)
    if (target / META).is_file():
        return target
    staging = models_dir / f".{target.name}.{time.time_ns()}"
    staging.mkdir(parents=True)
    try:
        with _quiet():
            _export(model, staging)
        staging.rename(target)
    except OSError:
        pass  # another process finished first
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _export(model: str, folder: Path) -> None:
    try:
        import onnx
    except ImportError:
        raise BackendError("the onnx backends need the onnx package: pip install onnx") from None
    import torch
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()  # no loading bar in a search's output
    # Eager attention exports as plain MatMul/Softmax, which ONNX Runtime's optimizer fuses
    # into one Attention node; the SDPA export was left unfused and ran slower than torch.
    st = SentenceTransformer(
        local_model_path(model), device="cpu", model_kwargs={"attn_implementation": "eager"}
    ).eval()
    names = list(st.tokenizer.model_input_names)

    class Pooled(torch.nn.Module):
        """The whole sentence-transformers pipeline (encoder, pooling, normalisation)."""

        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.st(dict(zip(names, inputs, strict=True)))["sentence_embedding"]

    sample = st.tokenizer(PROBES[:2], padding=True, return_tensors="pt")
    axes = {**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}}
    raw = folder / "raw.onnx"
    with torch.no_grad():
        torch.onnx.export(
            Pooled(),
            tuple(sample[n] for n in names),
            str(raw),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,  # the TorchScript exporter needs no onnxscript
        )
    config = st[0].auto_model.config
    optimized = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=getattr(config, "num_attention_heads", 0),
        hidden_size=getattr(config, "hidden_size", 0),
        opt_level=1,
    )
    optimized.save_model_to_file(str(folder / FILES["onnx"]))
    raw.unlink()
    quantize_dynamic(
        folder / FILES["onnx"],
        folder / FILES["onnx-int8"],
        weight_type=QuantType.QInt8,
        per_channel=True,
        # The optimizer's fused operators carry no type information the quantiser can read.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    st.tokenizer.save_pretrained(folder)
    reference = st.encode(PROBES, normalize_embeddings=True)
    meta = {"model": model, "inputs": names, "max_tokens": int(st.max_seq_length)}
    got = _run(_session(str(folder / FILES["onnx"]), 1), st.tokenizer, meta, PROBES)
    if float(np.min(np.sum(got * reference, axis=1))) < 0.9999:
        raise BackendError(
            f"the ONNX export of {model!r} does not reproduce its vectors: use "
            'embedder.backend = "torch" for it'
        )
    (folder / META).write_text(json.dumps(meta))


@functools.lru_cache(maxsize=4)
def _session(path: str, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0: ONNX Runtime's default, every physical core
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # its warnings are about graph details, not the user's doing
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _run(session: Any, tokenizer: Any, meta: dict[str, Any], texts: list[str]) -> np.ndarray:
    enc = tokenizer(
        texts, padding=True, truncation=True, max_length=meta["max_tokens"], return_tensors="np"
    )
    [vectors] = session.run(None, {n: enc[n].astype(np.int64) for n in meta["inputs"]})
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class OnnxEncoder:
    """A local: or hf: embedder on ONNX Runtime, CPU."""

    def __init__(self, cfg: EmbedderConfig, models_dir: Path) -> None:
        from transformers import AutoTokenizer

        folder = exported(cfg.model, models_dir)
        self.meta = json.loads((folder / META).read_text())
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        # Unset threads follow OMP_NUM_THREADS like torch does; ONNX Runtime ignores it.
        threads = resolve_threads(cfg.threads) or int(os.environ.get("OMP_NUM_THREADS") or 0)
        self.session = _session(str(folder / FILES[cfg.backend]), threads)
        self.batch_size = cfg.batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        # Longest first, as sentence-transformers does: a batch of similar lengths pads little.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: np.ndarray | None = None
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            vectors = _run(self.session, self.tokenizer, self.meta, [texts[i] for i in rows])
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), np.float32)
            out[rows] = vectors
        return out if out is not None else np.zeros((0, 0), np.float32)
