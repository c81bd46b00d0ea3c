"""The secrets-on-workers mode: the master holds no secret and forwards none; workers use their own.

Locust's master sends its parsed options, custom ones included, to every process that connects to its port as
a worker (``spawn`` messages). A fake worker (``FAKE_WORKER``: Locust's own RPC client in a subprocess) shows
what anyone reaching port 5557 gets: the API key in the normal mode, none with ``SECRETS_ON_WORKERS=true``. Then
a real run in each mode against a mock that refuses calls without the key: same calls, all authorised, and no
secret in the master's output or JSON in the secrets-on-workers mode (where the worker reads the key from a file).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llm_metrics.engine.histogram import Histogram
from mock_llm.testing import MockProcess
from tests.support import ROOT, Cluster, free_port, locust_cmd, locust_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

API_KEY = "sk-Worker-Only-Key-5tG8"
CHAT = locust_cmd("chat.py")
FAKE_WORKER = """
import json, sys, time
from locust import __version__
from locust.rpc import Message, zmqrpc
from llm_metrics.cluster.version import suite_version
port, out = int(sys.argv[1]), sys.argv[2]
ident = "fake-worker-1"
client = zmqrpc.Client("127.0.0.1", port, ident)
client.send(Message("client_ready", __version__, ident))
client.send(Message("llm_suite_version", {"version": suite_version()}, ident))
deadline = time.monotonic() + 25
while time.monotonic() < deadline:
    msg = client.recv()
    if msg.type == "spawn":
        with open(out, "w") as f:
            json.dump({"host": msg.data["host"], "parsed_options": msg.data["parsed_options"]}, f, default=str)
        break
client.close(linger=0)
"""


def master_cmd(port: int, extra: list[str]) -> list[str]:
    cmd = [*CHAT, "--master", "--headless", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    return [*cmd, "--expect-workers", "1", "-u", "2", "-r", "2", *extra]


@pytest.mark.parametrize("on_workers", [False, True])
def test_what_a_fake_worker_receives_from_the_master(on_workers: bool, tmp_path: Path) -> None:
    port = free_port()
    received = tmp_path / "received.json"
    env = locust_env(
        {
            "BASE": "http://127.0.0.1:9",
            "API_KEY": API_KEY,
            "SECRETS_ON_WORKERS": str(on_workers).lower(),
            "SUMMARY_JSON": str(tmp_path / "summary.json"),
        }
    )
    log = tmp_path / "master.log"
    with open(log, "wb") as out:
        master = subprocess.Popen(master_cmd(port, ["-t", "30s"]), cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        fake = subprocess.run(
            [sys.executable, "-c", FAKE_WORKER, str(port), str(received)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=40,
        )
        assert received.exists(), (fake.stderr[-2000:], log.read_text()[-2000:])
        master.send_signal(signal.SIGTERM)
        master.wait(20)
    finally:
        if master.poll() is None:
            master.kill()
            master.wait()
    forwarded: dict[str, Any] = json.loads(received.read_text())
    text = json.dumps(forwarded)
    if not on_workers:  # Locust's own behaviour, which the mode exists for
        assert forwarded["parsed_options"]["api_key"] == API_KEY
        return
    assert API_KEY not in text and forwarded["parsed_options"]["api_key"] == ""
    summary = (tmp_path / "summary.json").read_text()
    assert API_KEY not in summary and API_KEY not in log.read_text()


TRACE_CALLS = 12


def run_cluster(mock: MockProcess, tmp_path: Path, on_workers: bool) -> tuple[dict[str, Any], str]:
    """A master and one worker replaying a trace of ``TRACE_CALLS`` calls (a fixed number, so both modes can be
    compared call for call); the key in the worker's file (on_workers) or the master's environment. Returns the
    master's JSON summary and its output."""
    summary = tmp_path / "summary.json"
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(json.dumps({"offset_s": i * 0.1, "input_tokens": 20 + i, "output_tokens": 4}) + "\n"
                             for i in range(TRACE_CALLS)))  # fmt: skip
    knobs = {"BASE": mock.base_url, "WORKLOAD": "trace", "TRACE": str(trace), "CALIBRATE": "false", "SEED": "7"}
    knobs |= {"SUMMARY_JSON": str(summary), "SECRETS_ON_WORKERS": str(on_workers).lower()}
    key_file = tmp_path / "api_key"
    key_file.write_text(API_KEY + "\n")
    master_env = knobs if on_workers else {**knobs, "API_KEY": API_KEY}
    worker_env = {**knobs, "API_KEY_FILE": str(key_file)} if on_workers else knobs
    args = ["--expect-workers", "1", "-u", "2", "-r", "2", "-t", "4s", "--stop-timeout", "5"]
    with Cluster(tmp_path, master_env, args, locustfile="workload.py") as cluster:
        cluster.add_worker(worker_env)
        run = cluster.finish(40, worker_timeout=20)
    assert run.summary is not None, run.output[-3000:]
    return run.summary, run.output


def numbers(doc: dict[str, Any]) -> dict[str, Any]:
    """What a run measured that does not depend on timing: calls, failures, tokens asked and received."""
    counters = {c["name"]: 0.0 for c in doc["counters"]}
    for c in doc["counters"]:
        counters[c["name"]] += c["count"]
    failed = sum(r["hits"] for r in doc["rates"] if r["name"] == "http_req_failed")
    tokens = Histogram()
    for m in doc["metrics"]:
        if m["name"] == "llm_output_tokens":
            tokens.merge(Histogram.from_wire(m["hist"]))
    return {"counters": counters, "failed": failed, "output_tokens": (tokens.count, tokens.mean)}


def test_secrets_on_workers_gives_the_numbers_of_the_normal_mode(tmp_path: Path) -> None:
    mock_conf = {"ttft_ms": 5, "itl_ms": 1, "gateway": {"require_api_key": True, "api_keys": {API_KEY: {}}}}
    results = {}
    for on_workers in (False, True):
        run_dir = tmp_path / str(on_workers)
        run_dir.mkdir()
        with MockProcess(mock_conf) as mock:
            doc, output = run_cluster(mock, run_dir, on_workers)
            stats = mock.stats()
        assert stats["unauthorized"] == 0 and stats["per_key"][API_KEY]["requests"] == TRACE_CALLS, stats
        results[on_workers] = numbers(doc)
        if on_workers:
            assert API_KEY not in output and API_KEY not in json.dumps(doc)
            assert doc["metadata"]["options"]["secrets_on_workers"] == "true"
    assert results[False]["failed"] == 0 and results[False]["counters"]["http_reqs"] == TRACE_CALLS, results
    assert results[True] == results[False]
