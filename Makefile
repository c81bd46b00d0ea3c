# Every install step of the project lives here and in pyproject.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MOCK_PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help install run test lint mock clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev extras

run: $(STAMP) ## smoke of every target against the built-in mock, with the SLO table
	$(PY) -m mock_llm.demo

test: $(STAMP) ## run the whole test suite
	$(PY) -m pytest -q

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

mock: $(STAMP) ## start the mock LLM server in the foreground on 127.0.0.1:$(MOCK_PORT)
	$(PY) -m mock_llm --port $(MOCK_PORT)

clean: ## remove the venv and run outputs
	rm -rf $(VENV) out results test-artifacts .pytest_cache .mypy_cache .ruff_cache
