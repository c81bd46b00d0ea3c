"""The sidecar suite against the built-in mock, run as users run it: ``locust -f locustfiles/sidecar.py CLASS``.

The mock's own counters (``/mock/stats``) say what was really sent; its fault rules give a known error rate.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mock_llm.testing import MockProcess
from tests.support import ROOT, LocustRun, locust_env, run_locust

pytestmark = pytest.mark.slow

ENDPOINTS = {
    "/generate": "POST /generate",
    "/metrics": "GET /metrics",
    "/health": "GET /health",
    "/propose_trade_adjustments/": "POST /propose_trade_adjustments/",
}
CALLS = {
    "SidecarLoadUser": {"/generate", "/metrics"},
    "SidecarReadUser": {"/health", "/metrics"},
    "SidecarTradeUser": {"/propose_trade_adjustments/"},
}
FAST_MOCK = {"ttft_ms": 5, "itl_ms": 1}


def threshold_line(run: LocustRun, key: str, expr: str) -> str:
    return next(ln for ln in run.output.splitlines() if key in ln and expr in ln)


@pytest.mark.parametrize("user_class", sorted(CALLS))
def test_each_user_sends_what_the_mock_counts(tmp_path: Path, user_class: str) -> None:
    with MockProcess(FAST_MOCK) as mock:
        run = run_locust(
            "sidecar.py",
            ["-u", "4", "-r", "4", "-t", "3s", "--only-summary", user_class],
            {"OSIRIS_URL": mock.base_url, "THINK_TIME": "0.02"},
            tmp_path,
            timeout=25,
        )
        stats = mock.stats()
    assert run.returncode == 0, run.output[-3000:]
    assert run.summary is not None
    server = run.summary["server_metrics"]
    scrapes = server["scrapes"]
    assert scrapes >= 2 and server["scrape_errors"] == 0  # at the start, every 2 s, at the end
    for name, key in ENDPOINTS.items():
        sent = run.counter("http_reqs", name=name)
        own = scrapes if name == "/metrics" else 0  # the sampler's scrapes are not Users' requests
        assert sent == stats["requests"].get(key, 0) - own, (name, sent, stats["requests"])
        assert (sent > 20) == (name in CALLS[user_class]), (name, sent)
    # requests are named by their exact path and tagged with the User's scenario
    scenario = {"SidecarLoadUser": "sidecar_load", "SidecarReadUser": "sidecar_read"}.get(user_class, "sidecar_trade")
    for name in CALLS[user_class]:
        assert run.counter("http_reqs", name=name, scenario=scenario) > 0
    # the server's counters over the run, beside the client's
    rows = server["series"]["requests"]["groups"]
    for name in CALLS[user_class]:
        row = rows[name]
        assert row.get("server_without_own_scrapes", row["server"]) == row["client"], (name, row)
    # thresholds on endpoints this class never calls have no data: they pass, and the table says so
    for name in set(ENDPOINTS) - CALLS[user_class]:
        assert "no data" in threshold_line(run, f"http_req_failed{{name:{name}}}", "rate<")
    results = run.summary["thresholds"]
    assert all(r["ok"] for r in results)
    assert {r["no_data"] for r in results} == {True, False}


def test_llm_calls_record_tokens_and_the_server_agrees(tmp_path: Path) -> None:
    with MockProcess(FAST_MOCK) as mock:
        run = run_locust(
            "sidecar.py",
            ["-u", "3", "-r", "3", "-t", "2s", "--only-summary", "SidecarLoadUser", "SidecarTradeUser"],
            {"OSIRIS_URL": mock.base_url, "THINK_TIME": "0.02"},
            tmp_path,
            timeout=25,
        )
        stats = mock.stats()
    assert run.returncode == 0, run.output[-3000:]
    generate = run.hist("llm_output_tokens", name="/generate", scenario="sidecar_load")
    assert generate.count > 5 and generate.vmin == generate.vmax == 32  # conf/sidecar.yaml's max_tokens
    assert run.hist("llm_ttfb_ms", name="/propose_trade_adjustments/").count > 5
    assert run.hist("llm_output_tokens", name="/propose_trade_adjustments/").count == 0  # no count in that shape
    tokens = run.summary["server_metrics"]["series"]["tokens_served"]["groups"][""]  # type: ignore[index]
    trade_calls = stats["requests"]["POST /propose_trade_adjustments/"]
    assert tokens["client"] == generate.sum
    assert tokens["client_calls_without_token_count"] == trade_calls
    assert tokens["server"] == stats["tokens_served"] == generate.sum + 64 * trade_calls  # mock default: 64
    assert "SERVER SIDE" in run.output and "calls gave no token count" in run.output


@pytest.mark.parametrize(("rate", "code"), [(0.005, 99), (0.0, 0)], ids=["0.5%-fails", "0%-passes"])
def test_fault_rate_on_generate_against_the_999_slo(tmp_path: Path, rate: float, code: int) -> None:
    # seed 3: the fault rolls of /generate hit at call 9, 53, 158, 198, 477, 576, ... so any run of 10 to
    # 3000 calls fails more than 0.1% of them
    faults = [{"path": "/generate", "kind": "error", "rate": rate}]
    with MockProcess({"ttft_ms": 1, "itl_ms": 0, "seed": 3, "faults": faults}) as mock:
        run = run_locust(
            "sidecar.py",
            ["-u", "8", "-r", "8", "-t", "3s", "--only-summary", "SidecarLoadUser"],
            {"OSIRIS_URL": mock.base_url, "THINK_TIME": "0"},
            tmp_path,
            timeout=25,
        )
        stats = mock.stats()
    assert run.returncode == code, run.output[-3000:]
    failed, total = run.rate("http_req_failed", name="/generate")
    assert total == stats["requests"]["POST /generate"] >= 200
    assert failed == stats["faults"].get("error", 0)
    line = threshold_line(run, "http_req_failed{name:/generate}", "rate<0.001")
    if rate:
        assert failed > 0 and failed / total >= 0.001
        assert "✗" in line and "HTTP 500" in run.output
        errors = run.summary["server_metrics"]["series"]["server_errors"]["groups"]  # type: ignore[index]
        assert errors["/generate"] == {"server": failed, "client": failed}
    else:
        assert failed == 0 and "✓" in line
    others = [r for r in run.summary["thresholds"] if r["filter"].get("name") != "/generate"]  # type: ignore[index]
    assert others and all(r["ok"] for r in others)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("name", "text", "knob", "message"),
    [
        ("p.json", '["a", {"text": "b"}]', "TRADE_PROMPTS", 'p.json: [1]: expected a "prompt" key (keys found: text)'),
        ("p.json", '["a",', "TRADE_PROMPTS", "p.json: not valid JSON: line 1 column 6"),
        ("p.json", '{"prompts": []}', "TRADE_PROMPTS", "p.json: prompts: expected at least one prompt"),
        ("missing.json", None, "TRADE_PROMPTS", "missing.json: prompts file not found"),
        ("s.yaml", "generate: {max_tokens: -3}", "SIDECAR_CONF", "s.yaml: generate.max_tokens: expected a positive"),
    ],
    ids=["bad-entry", "malformed-json", "empty-list", "missing-file", "bad-conf"],
)
def test_bad_input_stops_the_run_at_start_up(
    tmp_path: Path, name: str, text: str | None, knob: str, message: str
) -> None:
    path = write(tmp_path, name, text) if text is not None else tmp_path / name
    # no server: the run must stop before any request is sent
    run = run_locust(
        "sidecar.py", ["-u", "1", "-t", "5s"], {"OSIRIS_URL": "http://127.0.0.1:9", knob: str(path)}, tmp_path, 25
    )
    assert run.returncode == 2, run.output[-3000:]
    assert f"sidecar suite: {tmp_path}/{message}" in run.output
    assert run.summary is None


def test_the_three_user_classes_are_listed_for_the_picker() -> None:
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "sidecar.py"), "--list"]
    out = subprocess.run(cmd, cwd=ROOT, env=locust_env(), capture_output=True, text=True, timeout=25)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Available", "Users:", "SidecarLoadUser", "SidecarReadUser", "SidecarTradeUser"]


def test_a_slow_start_up_does_not_cut_the_run_short(tmp_path: Path) -> None:
    """Locust arms ``-t`` on gevent's cached clock; after a start-up of 3 s it was stale by as much and a
    ``-t 2s`` run stopped before its first request. The suite refreshes the clock: the run lasts its 2 s."""
    slow = str(Path(__file__).parent / "locustfiles" / "slow_start_sidecar.py")
    with MockProcess({"ttft_ms": 1, "itl_ms": 0}) as mock:
        run = run_locust(
            slow, ["-u", "2", "-r", "2", "-t", "2s"], {"OSIRIS_URL": mock.base_url, "THINK_TIME": "0.1"}, tmp_path
        )
        stats = mock.stats()
    assert run.summary is not None, run.output[-3000:]
    assert stats["requests"].get("POST /generate", 0) >= 10, stats  # 2 Users, ~0.1 s per iteration, 2 s
    assert run.summary["metadata"]["duration_s"] >= 1.8, run.summary["metadata"]
