"""Distributed faults beyond a lost worker (``test_distributed_workers.py`` kills one mid-run): a worker of
another suite version, and a master that is restarted. Real processes on 127.0.0.1, the mock as the target.

* version: a worker claiming another suite version (``LLM_LOCUST_VERSION_OVERRIDE``, test-only) is refused
  with both versions named, on the master and on the worker (exit status 2), whether it comes before the test
  or joins it; the summary's ``workers`` section lists both refusals; the one refused during the run makes the
  verdict untrustworthy: thresholds pass, exit code 98, ``verdict_trustworthy: false`` with the reason;
* master restart: the workers of a killed master are not taken back by the new one (Locust's design); each
  quits after ``MASTER_LOST_TIMEOUT`` (status 1), saying why, with its own record of what it measured; the new
  master runs its test with new workers.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from llm_metrics.cluster.version import OVERRIDE_ENV, package_version
from mock_llm.testing import MockProcess
from tests.integration.test_distributed_workers import chat_env, http_reqs
from tests.support import ROOT, Cluster, LocustRun, free_port, locust_cmd, start_worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(40)]

CHAT = "POST /v1/chat/completions"
LOCUST = locust_cmd("chat.py")
OTHER = "9.9.9-other"


def passing_thresholds(tmp_path: Path) -> str:
    p = tmp_path / "th.yaml"
    p.write_text('thresholds:\n  http_req_failed: ["rate<0.5"]\n')
    return str(p)


def test_a_worker_of_another_suite_version_is_refused_and_named(tmp_path: Path) -> None:
    with MockProcess({"ttft_ms": 20, "itl_ms": 2, "seed": 1}) as mock:
        env = {**chat_env(mock, tmp_path, 8.0), "THRESHOLDS": passing_thresholds(tmp_path)}
        other = {**env, OVERRIDE_ENV: OTHER}
        args = ["--expect-workers", "1", "-u", "6", "-r", "20", "-t", "8s", "--stop-timeout", "3"]
        with Cluster(tmp_path, env, args) as cluster:
            early = cluster.add_worker(other, tmp_path / "early.log")  # before the test: refused while idle
            assert early.wait(15) == 2
            cluster.add_worker()
            wait_for(lambda: mock.stats()["requests"].get(CHAT, 0) > 0, 25, "the first chat request")
            time.sleep(1.0)
            late = cluster.add_worker(other, tmp_path / "late.log")  # joins the running test: refused
            assert late.wait(15) == 2
            run = cluster.finish(timeout=30)

    ours = package_version()
    for log in ("early.log", "late.log"):
        text = (tmp_path / log).read_text()
        assert f"this worker runs version {OTHER} of the suite, the master runs {ours}; quitting" in text, text
    assert run.output.count(f"runs version {OTHER} of the suite, the master runs {ours}: refused") == 2
    assert run.summary is not None, run.output[-3000:]
    workers = run.summary["workers"]
    refused = sorted(workers["refused"], key=lambda r: r["during_run"])
    assert [(r["version"], r["master_version"], r["during_run"]) for r in refused] == [
        (OTHER, ours, False),
        (OTHER, ours, True),
    ]
    assert len(workers["nodes"]) == 1 and workers["lost"] == []  # refused workers are not "lost"
    assert "2 refused (another suite version)" in run.output
    # the thresholds passed, but a worker took part and its numbers are left out: not trustworthy, 98
    assert run.summary["ok"] is True
    assert run.summary["verdict_trustworthy"] is False
    assert [r for r in run.summary["untrustworthy_because"] if refused[1]["id"] in r], run.summary
    assert "VERDICT NOT TRUSTWORTHY" in run.output
    assert run.returncode == 98, run.output[-3000:]
    # the merged numbers are the accepted worker's alone: one worker ran calls, and the master's count is its count
    ran = [v for v in run.views().values() if http_reqs(v) > 0]
    assert len(ran) == 1, [http_reqs(v) for v in run.views().values()]
    assert http_reqs(run.summary) == http_reqs(ran[0]) > 0


def read_json(p: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(p.read_text())
    return data


def test_after_a_master_restart_old_workers_quit_and_new_ones_run(tmp_path: Path) -> None:
    port = free_port()
    with MockProcess({"ttft_ms": 20, "itl_ms": 2, "seed": 1}) as mock:
        env = {**chat_env(mock, tmp_path, 6.0), "MASTER_LOST_TIMEOUT": "3"}

        def master(name: str, seconds: int) -> subprocess.Popen[bytes]:
            with open(tmp_path / f"{name}.log", "w") as out:
                return subprocess.Popen(
                    [*LOCUST, "--master", "--headless", "--master-bind-host", "127.0.0.1",
                     "--master-bind-port", str(port), "--expect-workers", "1", "-u", "4", "-r", "20",
                     "-t", f"{seconds}s", "--stop-timeout", "2"],
                    cwd=ROOT, env={**env, "SUMMARY_JSON": str(tmp_path / f"{name}.json")},
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )  # fmt: skip

        procs: list[subprocess.Popen[bytes]] = []
        try:
            first = master("first", 60)
            procs.append(first)
            (tmp_path / "old").mkdir()
            old = start_worker(
                LOCUST, port, {**env, "SUMMARY_JSON": str(tmp_path / "old" / "s.json")}, tmp_path / "old.log"
            )
            procs.append(old)
            wait_for(lambda: mock.stats()["requests"].get(CHAT, 0) > 0, 25, "the first chat request")
            time.sleep(3.5)  # a report or more reached the first master
            first.kill()
            first.wait()
            killed_at = time.monotonic()
            second = master("second", 4)
            procs.append(second)
            assert old.wait(15) == 1  # it did not hang: gone within MASTER_LOST_TIMEOUT and a few seconds
            quit_after = time.monotonic() - killed_at
            new = start_worker(LOCUST, port, env, tmp_path / "new.log")
            procs.append(new)
            assert second.wait(30) == 0, (tmp_path / "second.log").read_text()[-3000:]
            new.wait(15)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()

    assert 2.0 < quit_after < 10.0, quit_after  # 3 s after the last heartbeat (1 s apart) before the kill
    assert "no heartbeat from the master for 3 s" in (tmp_path / "old.log").read_text()
    own = read_json(tmp_path / "old" / "s.worker0.json")  # the old worker's own record survived it
    assert http_reqs(own) > 0
    second_run = LocustRun(0, (tmp_path / "second.log").read_text(), read_json(tmp_path / "second.json"))
    assert second_run.summary is not None
    nodes = second_run.summary["workers"]["nodes"]
    assert len(nodes) == 1 and http_reqs(second_run.summary) > 0  # the new worker only
    assert second_run.summary["verdict_trustworthy"] is True


def test_the_ledger_keeps_refused_workers_apart_and_says_why_a_verdict_is_not_trustworthy() -> None:
    """Pure (no processes): what the summary and the console say, given the events."""
    from llm_metrics.cluster.workers import WorkerLedger

    ledger = WorkerLedger(expected=2)
    ledger.connected("a", 100.0, 0)
    ledger.connected("idle-other", 100.5, 1)
    ledger.refuse("idle-other", OTHER, "1.0", 100.6, during_run=False)
    ledger.test_started(101.0, {"a": "ready", "idle-other": "ready"})  # Locust has not dropped it yet
    ledger.reported("a", 104.0, users=4)
    ledger.connected("late-other", 105.0, 2)
    ledger.refuse("late-other", OTHER, "1.0", 105.1, during_run=True)
    ledger.reported("late-other", 105.2, users=1)  # its final report: ignored
    assert ledger.observe(106.0, {"a": "running"}) == []  # the refused ones are neither lost nor silent
    doc = ledger.to_json()
    assert doc["at_start"] == 1 and [n["id"] for n in doc["nodes"]] == ["a"] and doc["lost"] == []
    assert [(r["id"], r["during_run"], r["at"]) for r in doc["refused"]] == [
        ("idle-other", False, -0.4),
        ("late-other", True, 4.1),
    ]
    assert ledger.trust_reasons() == [
        f"worker late-other was refused during the run (suite version {OTHER}, the master 1.0): "
        "the Users it ran are not counted"
    ]
    assert ledger.lines() == [
        "WORKERS: 1 at start (expected 2), 0 joined late, 0 lost; 1 of 1 reported; 2 refused (another suite version)",
        f"  refused: worker idle-other runs suite version {OTHER}, the master 1.0",
        f"  refused: worker late-other runs suite version {OTHER}, the master 1.0 (it had joined the test: its "
        "numbers are left out)",
    ]
    ledger.observe(107.0, {})  # "a" quits during the run: lost, and the verdict says so
    assert ledger.trust_reasons()[0] == (
        "worker 0 (a) quit during the run: what it measured after its last report is lost"
    )
