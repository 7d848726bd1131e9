"""Training end to end on a tiny random model (no download): build-data on a small judged
dataset, the SFT warm-up, 2 real GRPO steps with TRL, the policy registry, `policy:` loading,
resume after a killed run, and the held-out table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import tiny_llama
from fakes.beir import write_beir
from fakes.cli import RAGBIN, assert_one_line_error, rearag

from rearag.core.config import load_settings
from rearag.core.errors import RearagError
from rearag.policies.registry import get_policy
from rearag.policies.reranker import Reranker
from rearag.rl.data import build_data, held_out_queries, load_split, split_of
from rearag.rl.evaluate import evaluate_policy, in_first_stage_order
from rearag.rl.grpo import plan_grpo, train_grpo
from rearag.rl.registry import lineage, list_policies, load_manifest
from rearag.rl.sft import train_sft

TOPICS = {
    "volcano": ["Lava erupts from a volcano.", "Magma chambers feed eruptions.", "Ash clouds."],
    "bread": ["Sourdough uses wild yeast.", "Bakers knead bread dough.", "Rye bread is dark."],
    "tides": ["The moon raises tides.", "Spring tides follow full moons.", "Tidal ranges vary."],
    "chess": ["The Sicilian answers e4.", "Endgames decide chess games.", "Chess clocks tick."],
    "comets": ["Comet tails point away.", "Halley's comet returns.", "Comets are icy bodies."],
    "violins": ["Violin strings vibrate.", "Stradivari built violins.", "Violins have 4 strings."],
}
GRPO_TOML = """
[grpo]
num_generations = 2
per_device_train_batch_size = 2
max_completion_length = 12
save_steps = 1
learning_rate = 1e-4
"""


def label(query: str, doc_id: str) -> int:
    """The judgment write_beir got: the topic's documents 0 and 1 are relevant (1 more so)."""
    if not doc_id.startswith(query.split()[-1]):
        return 0
    return {"0": 1, "1": 2}.get(doc_id[-1], 0)


def cli(lab, *args: str):
    return rearag(*args, env={"REARAG_HOME": str(lab["home"])})


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, models_home: Path):
    """A home with a tiny model folder and training data built from a small dataset."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("rl")
    home = root / "home"
    tok = AutoTokenizer.from_pretrained(models_home / "models" / "smollm2-135m-instruct")
    tiny_llama(tok).save_pretrained(root / "tiny")
    tok.save_pretrained(root / "tiny")
    docs = {f"{t}{i}": (t.title(), x) for t, xs in TOPICS.items() for i, x in enumerate(xs)}
    queries = {f"q{i}": f"facts about {t}" for i, t in enumerate(TOPICS)}
    qrels = [(f"q{i}", f"{t}{k}", 2 if k == 1 else 1) for i, t in enumerate(TOPICS) for k in (0, 1)]
    dataset = write_beir(root, docs, queries, qrels)
    settings = load_settings(None, home=str(home))
    manifest = build_data(
        dataset,
        root / "data",
        settings,
        depth=8,
        window=4,
        samples_per_query=6,
        test_fraction=0.4,
        max_passage_chars=80,
        progress=False,
    )
    (root / "grpo.toml").write_text(GRPO_TOML)
    return {
        "root": root,
        "home": home,
        "settings": settings,
        "model": f"hf:{root / 'tiny'}",
        "data": root / "data",
        "dataset": dataset,
        "docs": docs,
        "manifest": manifest,
        "toml": root / "grpo.toml",
    }


def test_build_data_splits_by_query_and_uses_the_policy_prompt(lab):
    train, manifest = load_split(lab["data"], "train")
    test, _ = load_split(lab["data"] / "test")
    assert manifest.splits["train"].rows == len(train) > 0 and len(test) > 0
    train_q, test_q = set(train["query_id"]), set(test["query_id"])
    assert not train_q & test_q
    assert all(split_of(q, 0.4, 0) == "train" for q in train_q)
    policy = get_policy("rearag-reasoning")
    for row in list(train) + list(test):
        assert len(row["labels"]) == len(row["doc_ids"]) == 4
        assert sum(g > 0 for g in row["labels"]) >= 1  # --min-relevant 1
        # one prompt builder: the row's prompt is exactly what the reranker sends
        assert row["prompt"] == policy.messages(row["query"], row["passages"], 80)
        assert row["labels"] == [label(row["query"], d) for d in row["doc_ids"]]


def test_shuffled_windows_keep_labels_aligned_and_first_stage_ranks(lab):
    shuffled = build_data(
        lab["dataset"],
        lab["root"] / "shuffled",
        lab["settings"],
        policy="rearag-direct",
        depth=8,
        window=4,
        samples_per_query=6,
        test_fraction=0.4,
        max_passage_chars=80,
        shuffle=True,
        progress=False,
    )
    assert shuffled.shuffled and shuffled.beir_split == "test"
    rows = list(load_split(lab["root"] / "shuffled", "train")[0])
    rows += list(load_split(lab["root"] / "shuffled", "test")[0])
    policy = get_policy("rearag-direct")
    texts = {d: x if x.startswith(t) else f"{t}\n{x}" for d, (t, x) in lab["docs"].items()}
    for row in rows:
        # each passage keeps its own document, label and first-stage rank
        assert row["passages"] == [texts[d] for d in row["doc_ids"]]
        assert row["labels"] == [label(row["query"], d) for d in row["doc_ids"]]
        assert len(set(row["ranks"])) == 4 and all(1 <= r <= 8 for r in row["ranks"])
        assert row["prompt"] == policy.messages(row["query"], row["passages"], 80)
    # shuffled: the first-stage order is not the stored order in general
    assert any(row["ranks"] != sorted(row["ranks"]) for row in rows)
    ordered = in_first_stage_order(rows[0])
    assert ordered["ranks"] == sorted(rows[0]["ranks"])
    assert sorted(zip(ordered["doc_ids"], ordered["labels"], strict=True)) == sorted(
        zip(rows[0]["doc_ids"], rows[0]["labels"], strict=True)
    )
    # the same query split as the unshuffled data: no query is in both train and test
    test_q = set(load_split(lab["root"] / "shuffled", "test")[0]["query_id"])
    assert test_q == set(load_split(lab["data"], "test")[0]["query_id"])
    assert held_out_queries(lab["root"] / "shuffled", lab["dataset"], "test") == test_q


def test_build_data_refuses_to_overwrite_and_names_missing_splits(lab):
    only_test = build_data(
        lab["dataset"],
        lab["root"] / "only-test",
        lab["settings"],
        window=4,
        depth=8,
        splits=("test",),
        test_fraction=0.4,
        progress=False,
    )
    assert list(only_test.splits) == ["test"]
    with pytest.raises(RearagError, match="no train split"):
        load_split(lab["root"] / "only-test", "train")
    with pytest.raises(RearagError, match="not empty"):
        build_data(lab["dataset"], lab["data"], lab["settings"], progress=False)
    proc = cli(
        lab,
        "train",
        "build-data",
        str(lab["dataset"]),
        "--out",
        str(lab["root"] / "x"),
        "--window",
        "1",
    )
    assert_one_line_error(proc, "--window")


def test_warm_up_then_grpo_then_registry(lab):
    settings = lab["settings"]
    warm = train_sft(
        settings, lab["data"], lab["model"], "warm", examples=4, epochs=2, progress=False
    )
    assert warm.steps == 4
    log = [
        json.loads(x)
        for x in (lab["home"] / "runs/sft/warm/metrics.jsonl").read_text().splitlines()
    ]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < losses[0]  # the warm-up learns the targets

    plan, _ = plan_grpo(settings, lab["data"], "policy:warm", "rl", steps=2, config=lab["toml"])
    assert plan.grpo["use_cpu"] is True and plan.grpo["activation_checkpointing"] is False
    assert plan.grpo["max_steps"] == 2
    result = train_grpo(plan, settings, progress=False)
    assert result.steps == 2
    assert {"reward", "rewards/rank/mean", "rewards/format_valid/mean"} <= set(result.last)

    folder = lab["home"] / "policies" / "rl"
    assert (folder / "curves.png").read_bytes()[:4] == b"\x89PNG"
    steps = [json.loads(x)["step"] for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert sorted(set(steps)) == [1, 2]
    manifest = load_manifest(settings, "rl")
    assert (manifest.method, manifest.base_model, manifest.steps) == ("grpo", "policy:warm", 2)
    assert manifest.data_fingerprint == lab["manifest"].fingerprint
    assert [m.name for m in list_policies(settings)] == ["rl", "warm"]
    assert lineage(settings, "rl") == [lab["model"], "policy:warm", "policy:rl"]

    # policy:NAME loads everywhere a model reference goes
    ranked = Reranker(
        "rearag-reasoning", "policy:rl", settings=settings, window=3, step=2, max_new_tokens=8
    ).rank("facts about tides", ["Tides rise.", "Bread rises.", "Chess."])
    assert sorted(r.original_rank for r in ranked.results) == [1, 2, 3]
    proc = cli(lab, "policies", "show", "rl", "--json")
    assert json.loads(proc.stdout)["base_model"] == "policy:warm"

    table = evaluate_policy(
        settings,
        "rl",
        lab["data"] / "test",
        limit=3,
        max_new_tokens=8,
        compare=[("query-likelihood", lab["model"])],
        progress=False,
    )
    # data in first-stage order: one table
    assert [o.order for o in table.orders] == ["first-stage"]
    systems = table.orders[0].systems
    names = [s.system for s in systems]
    assert names == [
        "input order",
        "best constant (train)",
        "base",
        "warm-up",
        "trained",
        "query-likelihood",
    ]
    assert all(0 <= s.ndcg_10 <= 1 and s.windows == 3 for s in systems)
    assert systems[0].vs_input.mean == 0 and systems[0].first_kept == 1
    stored = load_manifest(settings, "rl").held_out
    assert stored[str(lab["data"].resolve())]["windows"] == 3
    proc = cli(lab, "policies", "show", "rl")
    assert "vs constant" in proc.stdout and proc.returncode == 0


def test_query_likelihood_trains_on_each_relevant_pair_with_the_query_as_reply(lab):
    settings = lab["settings"]
    train, _ = load_split(lab["data"], "train")
    relevant = {
        (r["query_id"], p)
        for r in train
        for p, g in zip(r["passages"], r["labels"], strict=True)
        if g > 0
    }
    result = train_sft(
        settings,
        lab["data"],  # built for rearag-reasoning: UPR reads only queries, passages, labels
        lab["model"],
        "upr",
        policy="query-likelihood",
        examples=100,
        epochs=3,
        learning_rate=1e-3,
        batch_size=4,
        lora=True,
        lora_rank=4,
        progress=False,
    )
    assert result.examples == len(relevant)  # each pair once, however many windows hold it
    log = (lab["home"] / "runs/sft/upr/metrics.jsonl").read_text().splitlines()
    losses = [json.loads(x)["loss"] for x in log if "loss" in json.loads(x)]
    assert losses[-1] < losses[0]
    assert load_manifest(settings, "upr").policy == "query-likelihood"
    # LoRA: the adapter is kept beside the merged model, small, naming its base by reference
    adapter = lab["home"] / "policies/upr/adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (config["r"], config["base_model_name_or_path"]) == (4, lab["model"])
    assert (adapter / "adapter_model.safetensors").stat().st_size < 1_000_000
    ranked = Reranker("query-likelihood", "policy:upr", settings=settings).rank(
        "facts about tides", ["The moon raises tides.", "Bread rises."]
    )
    assert sorted(r.original_rank for r in ranked.results) == [1, 2]
    table = evaluate_policy(settings, "upr", lab["data"], limit=3, progress=False)
    systems = [s.system for s in table.orders[0].systems]
    assert systems == ["input order", "best constant (train)", "base", "trained"]


def test_a_generative_warm_up_needs_data_built_for_its_policy(lab):
    with pytest.raises(RearagError, match="built for policy rearag-reasoning, not rankgpt"):
        train_sft(lab["settings"], lab["data"], lab["model"], "x", policy="rankgpt", progress=False)


def test_grpo_plan_errors_are_one_line(lab, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[grpo]\nnum_generatoins = 4\n")
    proc = cli(
        lab,
        "train",
        "grpo",
        "--data",
        str(lab["data"]),
        "--model",
        lab["model"],
        "--out",
        "x",
        "--config",
        str(bad),
    )
    assert_one_line_error(proc, "num_generatoins")
    proc = cli(
        lab,
        "train",
        "grpo",
        "--data",
        str(lab["data"]),
        "--model",
        lab["model"],
        "--out",
        "y",
        "--resume",
    )
    assert_one_line_error(proc, "nothing to resume")
    proc = cli(lab, "train", "sft", "--data", str(tmp_path), "--model", lab["model"], "--out", "z")
    assert_one_line_error(proc, "not training data")
    damaged = tmp_path / "damaged"
    (damaged / "train").mkdir(parents=True)
    (damaged / "manifest.json").write_text("{not json")
    proc = cli(lab, "train", "grpo", "--data", str(damaged), "--model", lab["model"], "--out", "d")
    assert_one_line_error(proc, "damaged")
    proc = cli(lab, "train", "eval", "nobody", "--data", str(lab["data"]), "--limit", "0")
    assert_one_line_error(proc, "--limit")
    proc = cli(
        lab,
        "train",
        "grpo",
        "--data",
        str(lab["data"]),
        "--model",
        "litellm:gpt-4o",
        "--out",
        "w",
        "--dry-run",
    )
    assert_one_line_error(proc, "cannot be trained")
    proc = cli(
        lab,
        "train",
        "grpo",
        "--data",
        str(lab["data"]),
        "--model",
        lab["model"],
        "--out",
        "v",
        "--dry-run",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["grpo"]["num_generations"] == 4 and plan["launch"].startswith("rearag train grpo")


def test_json_output_is_only_json(lab):
    proc = cli(
        lab,
        "train",
        "sft",
        "--data",
        str(lab["data"]),
        "--model",
        lab["model"],
        "--out",
        "quiet",
        "--examples",
        "1",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["name"] == "quiet"  # no trainer log lines on stdout


def test_cli_trains_query_likelihood_and_says_how_to_use_it(lab):
    args = ["train", "sft", "--data", str(lab["data"]), "--model", lab["model"], "--out", "u"]
    proc = cli(lab, *args, "--policy", "query-likelihood", "--examples", "2", "--lora")
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]  # the trainer's log lines come before it
    assert last.startswith("trained u: 2 examples")
    assert last.endswith("use --policy query-likelihood --model policy:u")


def test_resume_after_a_killed_run_loses_no_step(lab):
    args = [
        "train",
        "grpo",
        "--data",
        str(lab["data"]),
        "--model",
        lab["model"],
        "--out",
        "resumed",
    ]
    args += ["--steps", "4", "--config", str(lab["toml"])]
    run_dir = lab["home"] / "runs" / "grpo" / "resumed"
    proc = subprocess.Popen(
        [str(RAGBIN), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "REARAG_HOME": str(lab["home"])},
    )
    deadline = time.monotonic() + 240
    while not (run_dir / "checkpoint-2" / "trainer_state.json").is_file():
        assert time.monotonic() < deadline
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (lab["home"] / "policies" / "resumed").exists()

    plan, _ = plan_grpo(
        lab["settings"],
        lab["data"],
        lab["model"],
        "resumed",
        steps=4,
        config=lab["toml"],
        resume=True,
    )
    assert plan.resume_from and plan.resume_from.endswith("checkpoint-2")
    result = train_grpo(plan, lab["settings"], progress=False)
    assert result.steps == 4
    metrics = lab["home"] / "policies" / "resumed" / "metrics.jsonl"
    records = [json.loads(x) for x in metrics.read_text().splitlines()]
    # one training record per step: none lost, none logged twice
    assert sorted(r["step"] for r in records if "reward" in r) == [1, 2, 3, 4]
