"""The offline, one-thread environment of the tests and the benchmarks: no model hub, no
telemetry, one torch thread. Set before any model library is imported."""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "ANONYMIZED_TELEMETRY": "False",
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def go_offline() -> None:
    """Each variable of OFFLINE_ENV that is not set already."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
