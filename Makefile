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
.PHONY: help install run smoke-all test lint mock mock-demo bench bench-mock distributed prometheus workload-smoke workload-trace capacity capacity-rate capacity-demo clean chat chat-stream chat-nonstream chat-smoke chat-ui sidecar sidecar-read sidecar-trade sidecar-smoke gateway-smoke gateway-load gateway-stress gateway-spike gateway-smoke-fast gateway-load-fast gateway-stress-fast gateway-spike-fast gateway-ui

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

smoke-all: chat-smoke sidecar-smoke gateway-smoke-fast

# runs a command against the built-in mock unless BASE_URL names a real gateway
WITH_MOCK_GATEWAY := $(PY) -m mock_llm.with_mock --unless-env BASE_URL --
GATEWAY := $(WITH_MOCK_GATEWAY) $(LOCUST) -f locustfiles/gateway.py --headless

gateway-smoke: $(STAMP) ## seed 000 smoke: 1 user for 30 s with the SLO table (BASE_URL= a real gateway, else the mock)
	$(GATEWAY) --load-profile smoke

gateway-load: $(STAMP) ## seed 000 load: 0 -> 50 users in 2 min, 5 min at 50, ramp down (9 min)
	$(GATEWAY) --load-profile load

gateway-stress: $(STAMP) ## seed 000 stress: 100 -> 200 -> 300 users (26 min)
	$(GATEWAY) --load-profile stress

gateway-spike: $(STAMP) ## seed 000 spike: 10 -> 500 -> 10 users, then recovery_time (6 min)
	$(GATEWAY) --load-profile spike

gateway-smoke-fast: $(STAMP) ## gateway smoke rehearsal, 12 s (time scale 0.4)
	$(GATEWAY) --load-profile smoke --time-scale 0.4 --only-summary

gateway-load-fast: $(STAMP) ## load profile 20x faster (27 s)
	$(GATEWAY) --load-profile load --time-scale 0.05 --only-summary

gateway-stress-fast: $(STAMP) ## stress profile 50x faster (31 s)
	$(GATEWAY) --load-profile stress --time-scale 0.02 --only-summary

gateway-spike-fast: $(STAMP) ## spike profile 20x faster, with recovery_time (18 s)
	$(GATEWAY) --load-profile spike --time-scale 0.05 --only-summary

gateway-ui: $(STAMP) ## gateway suite in the web UI; pick a shape with the class picker
	$(WITH_MOCK_GATEWAY) $(LOCUST) -f locustfiles/gateway.py --web-host 127.0.0.1 --class-picker

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

# phase 1: most tests wait on Locust runs of a few seconds, so 8 at once keep the two cores busy (work stealing:
# the runs last 1-25 s); phase 2: the timing tests three at a time (bench/RESULTS.md, "Test suite")
TEST_JOBS ?= 8
TIMING_JOBS ?= 3
# The tests start hundreds of Locust and mock processes and 11 pytest processes that each rewrite the asserts of every
# test module: without bytecode on disk (a fresh clone, or PYTHONDONTWRITEBYTECODE set as in some shells and CI
# images) each of them compiles the project or the tests again (bench/RESULTS.md, "Test suite"). So the test run
# writes its bytecode (__pycache__, ignored by git) whatever the caller's shell says, and compiles the project and
# collects the tests once before the parallel phases start (a collection error is reported by phase 1).
test: export PYTHONDONTWRITEBYTECODE =
test: $(STAMP) ## the whole test suite: all but the timing tests (TEST_JOBS at once), then the timing tests (TIMING_JOBS); installs chromium and prometheus
	bash tests/e2e/ensure_chromium.sh
	sh tests/e2e/ensure_prometheus.sh
	@echo "== compile the project, collect the tests (their bytecode is then shared by every process)"
	$(PY) -m compileall -q -j 0 llm_users llm_metrics shapes mock_llm locustfiles
	$(PY) -m pytest -q --collect-only > /dev/null || true
	@echo "== phase 1: every test but the timing ones, $(TEST_JOBS) at once"
	timeout 1200 $(PY) -m pytest -q -n $(TEST_JOBS) --dist worksteal -m "not timing"
	@echo "== phase 2: the timing tests, $(TIMING_JOBS) at once"
	timeout 900 $(PY) -m pytest -q -n $(TIMING_JOBS) --dist worksteal -m timing

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

mock: $(STAMP) ## start the mock LLM server in the foreground on 127.0.0.1:$(MOCK_PORT)
	$(PY) -m mock_llm --port $(MOCK_PORT)

mock-demo: $(STAMP) ## start the mock on a free port, show it answering each API, stop it
	$(PY) -m mock_llm.demo

WORKLOAD := $(WITH_MOCK) $(LOCUST) -f locustfiles/workload.py --headless
CAPACITY := $(LOCUST) -f locustfiles/workload.py,locustfiles/capacity.py --headless

workload-smoke: $(STAMP) ## workload suite: 4-turn conversations of 500-token prompts, 10 s (BASE= a real server, else the mock)
	$(WORKLOAD) -u 5 -r 5 -t 10s --turns 4 --input-tokens 500 --output-tokens 50 --only-summary

workload-trace: $(STAMP) ## replay conf/traces/example.jsonl (20 s; TRACE=, TRACE_TIME_SCALE=)
	$(WORKLOAD) --workload trace -u 20 -r 20 --only-summary

capacity: $(STAMP) ## capacity search: the most Users meeting conf/thresholds/capacity.yaml (conf/capacity.yaml, CAPACITY_ARGS=)
	$(WITH_MOCK) $(CAPACITY) $(CAPACITY_ARGS)

capacity-rate: $(STAMP) ## capacity search in arrivals/s (open model)
	$(WITH_MOCK) $(CAPACITY) --workload open --capacity-mode rate $(CAPACITY_ARGS)

capacity-demo: $(STAMP) ## capacity search against a mock with a knee at 22.4 Users (about 30 s)
	$(PY) -m mock_llm.with_mock --config conf/mock-knee.yaml -- $(CAPACITY) --only-summary \
	  --thresholds conf/thresholds/capacity-demo.yaml --input-tokens 20 --output-tokens 4 \
	  --capacity-start 10 --capacity-max 40 --capacity-settle 1 --capacity-hold 2 --capacity-cooldown 0

WORKERS ?= 2
ARGS    ?= -u 20 -r 20 -t 1m
distributed: $(STAMP) ## master + WORKERS local workers (chat suite), headless, against BASE or the mock; ARGS go to the master
	$(PY) deploy/run_distributed.py --workers $(WORKERS) -- $(ARGS)

prometheus: ## install Debian's prometheus for the e2e scrape test (no-op when present)
	sh tests/e2e/ensure_prometheus.sh

bench: $(STAMP) ## client benchmarks: capacity, reading delay, memory, k6 side by side (~30 min; bench/RESULTS.md)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/hot_path.py
	$(PY) bench/client_capacity.py --repeat 3
	$(PY) bench/read_delay.py --repeat 2
	$(PY) bench/metrics_memory.py
	$(PY) bench/requests_log.py
	$(PY) bench/k6_compare.py --repeat 3

bench-mock: $(STAMP) ## mock capacity on one core with wrk (apt-get install -y wrk), recorded in bench/RESULTS.md
	$(PY) bench/mock_capacity.py

clean: ## remove the venv and run outputs
	rm -rf $(VENV) out results test-artifacts .pytest_cache .mypy_cache .ruff_cache
