"""The web UI extension over HTTP, without a browser, on the master of a distributed run (two worker
processes): the tabs declared to the React UI, their rows on ``/stats/requests`` (the master's merge of the
workers' reports), and the ``llm/report``, ``llm/metrics.csv`` and ``llm/summary.json`` routes, under
``--web-base-path``, with a secret that must appear nowhere.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from llm_metrics.outputs.webui import METRICS_TAB, THRESHOLDS_TAB
from mock_llm.testing import MockProcess
from tests.e2e.browser import LocustWeb
from tests.support import free_port, locust_cmd, start_worker
from tests.unit.report_summaries import check_html

pytestmark = pytest.mark.slow

SECRET = "sk-do-not-show-4711"


def test_tabs_and_routes_serve_the_masters_merged_numbers(tmp_path: Path) -> None:
    env = {"STREAM_RPS": "10", "NONSTREAM_RPS": "2", "MAX_TOKENS": "8", "PROMPTS": "short", "LOADTEST_TOKEN": SECRET}
    port = free_port()
    master_args = ("--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port))
    with (
        MockProcess({"ttft_ms": 30, "itl_ms": 2}) as mock,
        LocustWeb("chat.py", {"BASE": mock.base_url, **env}, tmp_path, master_args, base_path="/lt") as web,
    ):
        workers = [start_worker(locust_cmd("chat.py"), port, web.env, tmp_path / f"worker{i}.log") for i in range(2)]
        try:
            deadline = time.monotonic() + 20
            while web.get_json("stats/requests").get("worker_count") != 2:
                assert time.monotonic() < deadline, web.output[-3000:]
                time.sleep(0.2)
            _, _, index = web.get("")
            assert '"extended_tabs"' in index and METRICS_TAB in index and "./llm/report" in index
            assert web.post("swarm", {"user_count": "4", "spawn_rate": "4", "host": mock.base_url})["success"]
            deadline = time.monotonic() + 15
            while True:
                ext = {e["key"]: e["data"] for e in web.get_json("stats/requests").get("extended_stats", [])}
                rows = ext.get(METRICS_TAB, [])
                lag_rows = {r["request"] for r in rows if r["metric"] == "client_loop_lag_ms"}
                if any(r["metric"] == "TTFT ms" and r["samples"] >= 5 for r in rows) and len(lag_rows) == 2:
                    break  # (on a busy machine the second worker's first report can come seconds later)
                assert time.monotonic() < deadline, (ext, web.output[-3000:])
                time.sleep(0.5)
            assert {r["metric"] for r in rows} >= {"TTFT ms", "TPOT ms", "Total ms", "Output tokens", "Goodput"}
            assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)  # the display order
            llm_rows = [r for r in rows if r["scenario"] != "load generator"]
            assert llm_rows[-1]["scenario"] == "(all)"
            # then the load generator's self-measurement, per worker (merged on the master)
            generator = [r for r in rows if r["scenario"] == "load generator"]
            assert rows[len(llm_rows) :] == generator
            assert {r["metric"] for r in generator} >= {"client_loop_lag_ms"}
            assert {r["request"] for r in generator if r["metric"] == "client_loop_lag_ms"} == {"worker0", "worker1"}
            assert [r["result"] for r in ext[THRESHOLDS_TAB]] and all(r["result"] for r in ext[THRESHOLDS_TAB])

            status, ctype, page = web.get("llm/report")
            assert status == 200 and ctype.startswith("text/html")
            check_html(page)
            assert 'id="plot-ttft"' in page and "<polyline" in page and "LLM overview" in page
            assert "Load generator (every process that ran Users)" in page

            status, ctype, text = web.get("llm/metrics.csv")
            assert status == 200 and ctype.startswith("text/csv")
            table = list(csv.DictReader(io.StringIO(text)))
            stream = next(r for r in table if r["scenario"] == "chat_stream")
            assert 25 <= float(stream["llm_ttft_ms_p50"]) <= 60, stream

            live = web.get_json("llm/summary.json")
            assert live["schema"] == "llm-locust/summary/v1" and live["metadata"]["live"] is True
            assert live["metadata"]["workers_reported"] == 2
            assert any(s.get("users") == 4 for s in live["series"]), live["series"]  # the master's total

            everything = json.dumps(web.get_json("stats/requests")) + page + text + json.dumps(live)
            assert SECRET not in everything
            web.post("stop", {})
            web.wait_state("stopped")

            # the workers' final reports can arrive seconds after the stop on a busy machine: read the tab until
            # its count stays the same for three reads past its 1 s cache
            def tab() -> list[dict[str, Any]]:
                ext = {e["key"]: e["data"] for e in web.get_json("stats/requests")["extended_stats"]}
                return list(ext[METRICS_TAB])

            def ttft_samples(rows: list[dict[str, Any]]) -> int:
                return int(next(r for r in rows if (r["scenario"], r["metric"]) == ("(all)", "TTFT ms"))["samples"])

            seen: list[int] = []
            deadline = time.monotonic() + 20
            while len(seen) < 3 or len(set(seen[-3:])) > 1:
                assert time.monotonic() < deadline, seen
                time.sleep(1.1)
                final = tab()
                seen.append(ttft_samples(final))
            web.quit()
            # after a stop from the UI the master forgets its workers (Locust 2.47: client_stopped), so its quit
            # message does not reach them: end them as a person would, with SIGTERM (they write their own view)
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(20)
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
                    w.wait()
    # what the tab showed at the end is the master's merge of both workers' measurements
    summary = web.summary()
    views = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("summary.worker*.json"))]
    assert len(views) == 2, web.output[-3000:]
    ttft_all = next(r for r in final if (r["scenario"], r["metric"]) == ("(all)", "TTFT ms"))
    per_worker = [sum(m["count"] for m in v["metrics"] if m["name"] == "llm_ttft_ms") for v in views]
    merged = sum(m["count"] for m in summary["metrics"] if m["name"] == "llm_ttft_ms")
    assert ttft_all["samples"] == merged == sum(per_worker) and all(n > 0 for n in per_worker)
    assert SECRET not in web.output
