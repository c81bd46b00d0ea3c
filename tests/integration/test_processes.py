"""``--processes 2`` (Locust forks two workers and keeps a master, one command) runs the chat suite's open model
with each worker on its share of the arrivals, and the master's summary holds the merged metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from mock_llm.testing import MockProcess
from tests.support import free_port, run_locust

pytestmark = pytest.mark.slow


def test_processes_2_share_the_arrivals_and_merge_the_metrics(tmp_path: Path) -> None:
    port = free_port()
    rate = 30.0
    run_s = 6
    with MockProcess({"ttft_ms": 20, "itl_ms": 5, "seed": 2}) as mock:
        env = {
            "BASE": mock.base_url,
            "STREAM_RPS": str(rate),
            "NONSTREAM_RPS": "0",
            "MAX_TOKENS": "8",
            "PROMPTS": "short",
            "SMOKE": "false",
        }
        # the forked workers connect to --master-port: give both the master's free port
        args = ["--processes", "2", "-u", "20", "-r", "100", "-t", f"{run_s}s", "--stop-timeout", "5",
                "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                "--master-host", "127.0.0.1", "--master-port", str(port)]  # fmt: skip
        run = run_locust("chat.py", args, env, tmp_path)
        stats = mock.stats()
    assert run.returncode == 0, run.output[-3000:]
    views = [v for _, v in sorted(run.views().items())]
    assert len(views) == 2, run.output[-2000:]

    # the master's merged counts are what the mock received, and both workers took part
    sent = stats["requests"]["POST /v1/chat/completions"]
    assert run.counter("http_reqs") == sent > 0
    per_worker = run.worker_counts("http_reqs")
    assert sum(per_worker) == sent and all(n > 0 for n in per_worker)

    # the merged TTFT histogram is exactly the union of the workers' own
    union = run.workers_hist("llm_ttft_ms")
    assert run.hist("llm_ttft_ms") == union and union.count > 0

    # each worker ran its own share of the one schedule: shares 0 and 1 of 2, together the asked rate
    ledgers = [v["arrivals"] for v in views]
    assert sorted((a["share"]["index"], a["share"]["workers"]) for a in ledgers) == [(0, 2), (1, 2)]
    issued = sum(a["issued"].get("chat_stream", 0) for a in ledgers)
    assert issued == sent + run.counter("dropped_iterations")
    total_rate = sum(a["issued"]["chat_stream"] / a["scheduled_s"] for a in ledgers)
    assert total_rate == pytest.approx(rate, rel=0.1)

    # the saturation guard's per-process line judges both workers' samples, merged by the master
    assert run.summary is not None
    pp = run.summary["load_generator"]["per_process"]
    assert pp["processes"] == 2 and pp["held_total"] >= pp["held_per_process"] >= 1, pp
    assert f"\n  {pp['text']}\n" in run.output
    procs = {m["tags"].get("process") for m in run.summary["metrics"] if m["name"] == "client_open_calls"}
    assert procs == {"worker0", "worker1"}


def test_the_saturation_guard_prints_what_one_process_held_within_the_lag_limit(tmp_path: Path) -> None:
    # 4 streams open all along (closed loop, ~1 s streams of 20 tokens at 50 ms) in one process: it holds 3-4 open
    # calls for the whole run, the band "3-5" (the merge over processes: test_load_limit.py and the test above)
    with MockProcess({"ttft_ms": 50, "itl_ms": 50, "seed": 3}) as mock:
        args = ["-u", "4", "-r", "100", "-t", "8s", "--stop-timeout", "3", "--host", mock.base_url]
        locustfile = str(Path(__file__).parent / "locustfiles" / "open_streams.py")
        run = run_locust(locustfile, args, {"ACCEPT_SATURATION": "false"}, tmp_path)
    assert run.summary is not None, run.output[-3000:]
    pp = run.summary["load_generator"]["per_process"]
    band = next(b for b in pp["bands"] if b["open_calls"] == "3-5")
    assert band["judged"] and band["max_open_calls"] == 4 and band["probed_s"] >= 5  # ~7 s of the 8 s run
    assert pp["held_per_process"] == 4 and pp["held_total"] == 4 and pp["processes"] == 1
    # tokens read per second: 4 streams of 20 tokens in ~1.05 s (the mock's pace), ~76/s
    assert 40 < band["tokens_per_s"] < 100
    # whether 4 streams stayed within 10 ms depends on the machine's load: the line says which, in both outputs
    assert pp["status"] in ("all_within", "all_over"), pp
    assert f"\n  {pp['text']}\n" in run.output
    held = "This run held up to 4 open calls in one process"
    if pp["status"] == "all_within":
        assert pp["text"].startswith("per process: event-loop lag p99 <= 10 ms up to 4 open LLM calls (about ")
        assert pp["text"].endswith(held)
    else:  # a busy machine (a full `make test` once): the advice follows what was held
        assert pp["text"].startswith("per process: event-loop lag p99 over 10 ms already at 3-5 open calls (p99 ")
        assert pp["text"].endswith(f"{held}: for p99 <= 10 ms run at least 2 processes (--processes N on this "
                                   "machine, or more workers)")  # fmt: skip
    # the per-band series are in the JSON's metrics, tagged with the process and the band, not in the console's table
    tags = {tuple(sorted(m["tags"].items())) for m in run.summary["metrics"] if m["name"] == "client_open_calls"}
    assert (("open_calls", "5"), ("process", "local")) in tags
    assert "client_open_calls" not in run.output and "client_loop_lag_ms" in run.output
