# Every install step of the project lives here and in pyproject.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCUST := $(VENV)/bin/locust
MOCK_PORT ?= 8000
USERS ?= 20
# runs a command against the built-in mock unless BASE names a real target
WITH_MOCK := $(PY) -m mock_llm.with_mock --unless-env BASE --

.DEFAULT_GOAL := help
.PHONY: help install run smoke-all test lint mock mock-demo bench-mock clean chat chat-stream chat-nonstream chat-smoke chat-ui sidecar sidecar-read sidecar-trade sidecar-smoke

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev extras

run: $(STAMP) ## smoke of every target against the built-in mock, with the SLO tables
	$(PY) -m mock_llm.with_mock -- $(MAKE) --no-print-directory -k smoke-all

smoke-all: chat-smoke sidecar-smoke

SIDECAR_ARGS ?= --headless -u 10 -r 10 -t 1m
# runs a command against the built-in mock unless OSIRIS_URL names a real sidecar
WITH_MOCK_SIDECAR := $(PY) -m mock_llm.with_mock --unless-env OSIRIS_URL --

sidecar-smoke: $(STAMP) ## sidecar suite smoke: all three Users, 8 s (OSIRIS_URL= a real sidecar, else the mock)
	THINK_TIME=0.2 $(WITH_MOCK_SIDECAR) $(LOCUST) -f locustfiles/sidecar.py --headless -u 6 -r 6 -t 8s --only-summary

sidecar: $(STAMP) ## seed 002 default script: POST /generate + GET /metrics (SIDECAR_ARGS, default 10 users 1 min)
	$(WITH_MOCK_SIDECAR) $(LOCUST) -f locustfiles/sidecar.py $(SIDECAR_ARGS) SidecarLoadUser

sidecar-read: $(STAMP) ## seed 002 read-heavy: GET /health + GET /metrics
	$(WITH_MOCK_SIDECAR) $(LOCUST) -f locustfiles/sidecar.py $(SIDECAR_ARGS) SidecarReadUser

sidecar-trade: $(STAMP) ## seed 002 trade proposals: POST /propose_trade_adjustments/ with conf/prompts.json
	$(WITH_MOCK_SIDECAR) $(LOCUST) -f locustfiles/sidecar.py $(SIDECAR_ARGS) SidecarTradeUser

chat-smoke: $(STAMP) ## chat suite smoke: stream + non-stream, 10 s (BASE= a real server, else the mock)
	STREAM_RPS=2 NONSTREAM_RPS=2 $(WITH_MOCK) $(LOCUST) -f locustfiles/chat.py --headless -u 10 -r 10 -t 10s --only-summary

chat: $(STAMP) ## seed 003: stream + non-stream for 1 minute at low RPS (NONSTREAM_RPS=3 STREAM_RPS=1 DURATION_MIN=1)
	NONSTREAM_RPS=$${NONSTREAM_RPS:-3} STREAM_RPS=$${STREAM_RPS:-1} DURATION_MIN=$${DURATION_MIN:-1} \
	  $(WITH_MOCK) $(LOCUST) -f locustfiles/chat.py --headless -u $(USERS) -r $(USERS)

chat-stream: $(STAMP) ## seed 003: stream-only quick check (STREAM_RPS=2 NONSTREAM_RPS=0 DURATION_MIN=1)
	STREAM_RPS=$${STREAM_RPS:-2} NONSTREAM_RPS=0 DURATION_MIN=$${DURATION_MIN:-1} \
	  $(WITH_MOCK) $(LOCUST) -f locustfiles/chat.py --headless -u $(USERS) -r $(USERS)

chat-nonstream: $(STAMP) ## seed 003: non-stream only at higher RPS (NONSTREAM_RPS=5 STREAM_RPS=0 DURATION_MIN=2)
	NONSTREAM_RPS=$${NONSTREAM_RPS:-5} STREAM_RPS=0 DURATION_MIN=$${DURATION_MIN:-2} \
	  $(WITH_MOCK) $(LOCUST) -f locustfiles/chat.py --headless -u $(USERS) -r $(USERS)

chat-ui: $(STAMP) ## chat suite in Locust's web UI on http://127.0.0.1:8089 (BASE= a real server, else the mock)
	$(WITH_MOCK) $(LOCUST) -f locustfiles/chat.py --web-host 127.0.0.1 --class-picker

test: $(STAMP) ## run the whole test suite (installs Debian's chromium for the browser tests when missing)
	bash tests/e2e/ensure_chromium.sh
	$(PY) -m pytest -q

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

mock: $(STAMP) ## start the mock LLM server in the foreground on 127.0.0.1:$(MOCK_PORT)
	$(PY) -m mock_llm --port $(MOCK_PORT)

mock-demo: $(STAMP) ## start the mock on a free port, show it answering each API, stop it
	$(PY) -m mock_llm.demo

bench-mock: $(STAMP) ## mock capacity on one core with wrk (apt-get install -y wrk), recorded in bench/RESULTS.md
	$(PY) bench/mock_capacity.py

clean: ## remove the venv and run outputs
	rm -rf $(VENV) out results test-artifacts .pytest_cache .mypy_cache .ruff_cache
