"""Trained policies: `$REARAG_HOME/policies/NAME/` holds `model/` (a plain transformers folder,
LoRA merged in, so `policy:NAME` loads like any model), `manifest.json`, and the run's
`metrics.jsonl` and `curves.png`."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from rearag.core.config import Settings
from rearag.core.errors import InvalidInputError, NotFoundError

MANIFEST = "manifest.json"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class PolicyManifest(BaseModel):
    name: str
    policy: str  # the prompt/parser it was trained with: use the same one at inference
    method: Literal["sft", "grpo"]
    base_model: str  # the model reference training started from (may be another policy:)
    lora: bool
    data: str
    data_fingerprint: str
    steps: int
    train_seconds: float
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    held_out: dict[str, Any] | None = None  # filled in by `rearag train eval`


def check_name(name: str) -> str:
    if not name or not set(name) <= _NAME_CHARS or name.startswith("."):
        raise InvalidInputError(
            f"policy name {name!r} is not usable: use letters, digits, '-', '_' and '.'"
        )
    return name


def policy_folder(settings: Settings, name: str) -> Path:
    return settings.policies_dir / check_name(name)


def ensure_new(settings: Settings, name: str) -> None:
    if (policy_folder(settings, name) / MANIFEST).is_file():
        raise InvalidInputError(
            f"a policy named {name!r} exists: choose another --out, or remove it with "
            f"`rearag policies delete {name}`"
        )


def save_policy(
    settings: Settings, manifest: PolicyManifest, model: Any, tokenizer: Any, extras: list[Path]
) -> Path:
    """Write the policy beside its final place and rename it in: a crash never leaves a
    half-written policy that `policy:NAME` would load."""
    ensure_new(settings, manifest.name)
    target = policy_folder(settings, manifest.name)
    staging = target.with_name(f".{manifest.name}.{time.time_ns()}")
    model.save_pretrained(staging / "model")
    tokenizer.save_pretrained(staging / "model")
    for extra in extras:
        if extra.is_file():
            shutil.copy2(extra, staging / extra.name)
        elif extra.is_dir():
            shutil.copytree(extra, staging / extra.name)
    (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2))
    shutil.rmtree(target, ignore_errors=True)  # a leftover without a manifest
    staging.rename(target)
    return target


def load_manifest(settings: Settings, name: str) -> PolicyManifest:
    file = policy_folder(settings, name) / MANIFEST
    if not file.is_file():
        known = ", ".join(m.name for m in list_policies(settings)) or "none yet"
        raise NotFoundError(f"no trained policy {name!r} (trained policies: {known})")
    try:
        return PolicyManifest.model_validate_json(file.read_text())
    except ValidationError:
        raise InvalidInputError(f"{file} is damaged: retrain the policy or delete it") from None


def write_manifest(settings: Settings, manifest: PolicyManifest) -> None:
    file = policy_folder(settings, manifest.name) / MANIFEST
    staging = file.with_suffix(".tmp")
    staging.write_text(manifest.model_dump_json(indent=2))
    staging.replace(file)


def list_policies(settings: Settings) -> list[PolicyManifest]:
    if not settings.policies_dir.is_dir():
        return []
    found = []
    for folder in sorted(settings.policies_dir.iterdir()):
        file = folder / MANIFEST
        if not folder.name.startswith(".") and file.is_file():
            try:
                found.append(PolicyManifest.model_validate_json(file.read_text()))
            except ValidationError:
                continue
    return found


def delete_policy(settings: Settings, name: str) -> None:
    load_manifest(settings, name)
    shutil.rmtree(policy_folder(settings, name))


def lineage(settings: Settings, name: str) -> list[str]:
    """Model references from the base model to this policy: [local:x, policy:warm, policy:name]."""
    chain = [f"policy:{name}"]
    manifest = load_manifest(settings, name)
    while True:
        chain.insert(0, manifest.base_model)
        if not manifest.base_model.startswith("policy:") or len(chain) > 20:
            return chain
        manifest = load_manifest(settings, manifest.base_model.removeprefix("policy:"))
