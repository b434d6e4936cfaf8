# Two commands for a new user: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# CPU=1: torch and torchvision from PyTorch's CPU-only index first, so pip keeps them instead of the default
# wheels with CUDA (whose CUDA libraries and triton are most of the default install's size).
CPU ?=
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# EXTRAS: the optional dependencies installed with the package: dev (tests, lint, notebooks' runner, Ray) by
# default; EXTRAS= installs the library and its command alone (enough for demo and every genetic-cnn command).
EXTRAS ?= dev

.PHONY: demo test test-quick lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(if $(CPU),$(BIN)/pip install --quiet torch torchvision --index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e '.$(if $(EXTRAS),[$(EXTRAS)])'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/genetic-cnn evolve --config experiments/configs/demo.toml

# -n auto: one pytest worker per core (pytest-xdist); every test runs torch on one thread.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs
