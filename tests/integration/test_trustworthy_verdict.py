"""No silent "no data", no pass without a successful call, bad output paths and threshold files stop at start-up."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mock_llm.testing import MockProcess
from tests.support import LOCUSTFILES, ROOT, locust_env, run_locust

pytestmark = pytest.mark.slow

CHAT = {"NONSTREAM_RPS": "0", "STREAM_RPS": "5", "MAX_TOKENS": "5", "SMOKE": "false"}


def write(tmp_path: Path, name: str, data: object) -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return p


def test_every_call_failing_with_only_latency_thresholds_is_not_a_pass(tmp_path: Path) -> None:
    # before: every LLM threshold was "no data", which passes, and the run exited 0
    th = write(tmp_path, "th.yaml", {"thresholds": {"llm_ttft_ms": ["p(95)<1000"], "llm_total_ms": ["p(99)<5000"]}})
    faults = {"faults": [{"path": "*", "kind": "error", "rate": 1.0, "arg": 503}]}
    with MockProcess({"ttft_ms": 5, "itl_ms": 1, **faults}) as mock:
        run = run_locust(
            "chat.py",
            ["-u", "5", "-t", "2s", "--only-summary", "--thresholds", str(th)],
            {"BASE": mock.base_url, **CHAT},
            tmp_path,
        )
    assert run.returncode == 98, run.output[-3000:]
    assert run.summary is not None
    made = run.summary["llm_calls"]["made"]
    assert made > 0 and run.summary["llm_calls"]["succeeded"] == 0
    because = " ".join(run.summary["untrustworthy_because"])
    assert f"no LLM call succeeded: nothing measured the target ({made} calls made, all failed)" in because
    ttft = next(t for t in run.summary["thresholds"] if t["metric"] == "llm_ttft_ms")
    assert ttft["no_data"] is True
    assert ttft["no_data_reason"] == f"no LLM call succeeded ({made} made, all failed), so nothing recorded llm_ttft_ms"
    assert "no data: llm_ttft_ms p(95)<1000: no LLM call succeeded" in run.output


def test_the_gateway_slo_without_its_header_names_the_header_and_the_count(tmp_path: Path) -> None:
    conf = write(tmp_path, "g.yaml", {"wait_time": 0.05, "auth": {"enabled": False}})
    with MockProcess({"ttft_ms": 5, "itl_ms": 1, "gateway": {"timing_headers": False}}) as mock:
        run = run_locust(
            "gateway.py",
            ["--only-summary", "--load-profile", "smoke", "--time-scale", "0.1", "--stop-timeout", "5"],
            {"BASE_URL": mock.base_url, "GATEWAY_CONF": str(conf)},
            tmp_path,
            timeout=40,
        )
    assert run.summary is not None, run.output[-3000:]
    ok = run.summary["llm_calls"]["succeeded"]
    assert ok > 0
    carried = "x-litellm-overhead-duration-ms or X-Kong-Proxy-Latency or Server-Timing gateway or " + (
        "x-envoy-upstream-service-time"
    )
    reason = f"gateway_latency: 0 of {ok} successful answers carried {carried}"
    gw = [t for t in run.summary["thresholds"] if t["metric"] == "gateway_latency"]
    assert len(gw) == 2 and all(t["no_data"] and t["no_data_reason"] == reason for t in gw)
    assert f"no data: gateway_latency p(95)<50: {reason}" in run.output


def test_a_duplicate_threshold_key_is_refused_at_start_up(tmp_path: Path) -> None:
    th = write(tmp_path, "dup.yaml", 'thresholds:\n  gateway_latency: ["p(95)<50"]\n  gateway_latency: ["p(99)<100"]\n')
    run = run_locust(
        "chat.py", ["-u", "1", "-t", "2s", "--thresholds", str(th)], {"BASE": "http://127.0.0.1:9"}, tmp_path
    )
    assert run.returncode == 2, run.output[-2000:]
    assert f"{th}: line 3: duplicate key 'gateway_latency'" in run.output
    assert "Ramping" not in run.output  # stopped before any User


@pytest.mark.parametrize("flag", ["--summary-json", "--html-report"])
def test_an_unwritable_output_path_stops_the_run_at_start_up(tmp_path: Path, flag: str) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output's folder should be")
    target = blocker / "out.json"
    run = run_locust("chat.py", ["-u", "1", "-t", "2s", flag, str(target)], {"BASE": "http://127.0.0.1:9"}, tmp_path)
    assert run.returncode == 2, run.output[-2000:]
    assert f"{flag} {target}: cannot write the file there" in run.output
    assert "Ramping" not in run.output


def test_a_saturated_load_generator_is_named_and_not_trusted(tmp_path: Path) -> None:
    # the test locustfile blocks the hub in 40 ms slices (a CPU-burning listener): loop lag and CPU both trip
    burner = str(Path(__file__).parent / "locustfiles" / "saturating_chat.py")
    with MockProcess({"ttft_ms": 5, "itl_ms": 1}) as mock:
        # the guard judges here (tests.support accepts saturation for the other tests)
        env = {"BASE": mock.base_url, "ACCEPT_SATURATION": "false", **CHAT}
        run = run_locust(burner, ["-u", "5", "-t", "7s", "--only-summary"], env, tmp_path)
    assert run.returncode == 98, run.output[-3000:]
    assert "LOAD GENERATOR SATURATED" in run.output
    assert "--processes" in run.output  # what to do
    assert run.summary is not None
    gen = run.summary["load_generator"]
    assert gen["saturated"] is True and gen["loop_lag_ms"]["p99"] > 30
    assert gen["cpu_pct"]["seconds"] >= 5  # (its value depends on the other processes sharing the machine)
    assert any(
        r.startswith("load generator saturated: event-loop lag p99") for r in run.summary["untrustworthy_because"]
    )
    lag = next(m for m in run.summary["metrics"] if m["name"] == "client_loop_lag_ms")
    assert lag["tags"] == {"process": "local"} and gen["loop_lag_ms"]["probed_s"] >= 5


def test_a_failed_write_at_the_end_keeps_the_verdict_and_the_exit_code(tmp_path: Path) -> None:
    # the summary's folder passes the start-up check, then becomes a file while the run goes on
    out = tmp_path / "out"
    summary = out / "summary.json"
    th = write(tmp_path, "th.yaml", {"thresholds": {"llm_ttft_ms": ["p(95)<5000"]}, "saturation": False})
    with MockProcess({"ttft_ms": 5, "itl_ms": 1}) as mock:
        env = locust_env({"BASE": mock.base_url, "SUMMARY_JSON": str(summary), "THRESHOLDS": str(th), **CHAT})
        cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES / "chat.py"), "--headless"]
        proc = subprocess.Popen(
            [*cmd, "-u", "10", "-t", "4s", "--only-summary"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while not out.is_dir() and time.monotonic() < deadline:  # created by the start-up check
            time.sleep(0.1)
        time.sleep(1.0)
        shutil.rmtree(out)
        out.write_text("a file where the summary's folder was")
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output[-3000:]
    assert "1 of 1 thresholds passed" in output  # the verdict was printed
    assert f"JSON summary NOT written to {summary}" in output
    assert out.read_text() == "a file where the summary's folder was"


def test_a_threshold_on_a_prompt_variant_a_dataset_replaced_says_so(tmp_path: Path) -> None:
    # the default chat thresholds filter on prompt:short and prompt:cot; DATASET replaces the variants
    dataset = write(tmp_path, "prompts.jsonl", '{"prompt": "Say hi."}\n{"prompt": "Say bye."}\n')
    with MockProcess({"ttft_ms": 5, "itl_ms": 1}) as mock:
        run = run_locust(
            "chat.py",
            ["-u", "5", "-t", "2s", "--only-summary"],
            {"BASE": mock.base_url, **CHAT, "DATASET": str(dataset)},
            tmp_path,
        )
    assert run.summary is not None, run.output[-3000:]
    short = [t for t in run.summary["thresholds"] if t["filter"].get("prompt") == "short"]
    assert short and all(t["no_data"] for t in short)
    for t in short:
        assert t["no_data_reason"] == f"no prompt variant of {t['metric']} has prompt=short (values recorded: dataset)"
    assert "no prompt variant of llm_ttft_ms has prompt=short (values recorded: dataset)" in run.output


def test_an_accepted_saturation_is_reported_without_the_98(tmp_path: Path) -> None:
    """``--accept-saturation`` (env ``ACCEPT_SATURATION``): the same saturated generator is measured and named, but
    the verdict does not become untrustworthy for it."""
    burner = str(Path(__file__).parent / "locustfiles" / "saturating_chat.py")
    with MockProcess({"ttft_ms": 5, "itl_ms": 1}) as mock:
        env = {"BASE": mock.base_url, "ACCEPT_SATURATION": "true", **CHAT}
        run = run_locust(burner, ["-u", "5", "-t", "7s", "--only-summary"], env, tmp_path)
    assert run.summary is not None, run.output[-3000:]
    assert "LOAD GENERATOR SATURATED: its own timings are distorted; accepted by --accept-saturation" in run.output
    assert run.summary["load_generator"]["saturated"] is True
    assert not [r for r in run.summary["untrustworthy_because"] if r.startswith("load generator saturated")]
    assert run.returncode != 98, run.output[-3000:]
