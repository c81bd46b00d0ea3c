"""The test-support module: what tests need to run Locust as users do (subprocesses with the suite's
locustfiles) and to read what a run wrote.

* ``free_port()``: a TCP port free on 127.0.0.1 (for a server a test starts; never 8000/8089).
* ``locust_env(extra)``: the environment of a Locust subprocess (no knob of the caller's shell leaks in).
* ``run_locust(locustfile, args, env, tmp_path) -> LocustRun``: one headless process, its JSON summary read.
* ``Cluster(tmp, env, master_args, locustfile=...)``: a headless master on a free port of 127.0.0.1 and the
  workers a test adds (``add_worker``), every output in a file of ``tmp``, every process stopped when the
  ``with`` block ends, on a failure too; ``finish(timeout)`` waits (bounded) and reads the master's summary.
* ``run_distributed(locustfile, args, env, tmp_path, workers=2) -> LocustRun``: master + N workers, one call.
* ``LocustRun``: return code, output, summary; ``.views()`` the workers' own records; ``.hist/.counter/.rate``.
* ``start_worker(locust_cmd(f), port, env, log)``: one worker process, for tests that manage their own master.
* ``wait_for(cond, timeout, what)``, ``SchedulingNoise``, ``missing_tool(reason)``.
* ``run_soak(...)``, ``analyze_soak(...)``: a chat run against a faulty mock, sampled inside the Locust process
  (RSS, open fds, greenlets), for ``tests/integration/test_soak.py`` and its long version ``bench/soak.py``.

The mock itself starts with ``mock_llm.launch.MockProcess`` (re-exported by ``mock_llm.testing``).
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llm_metrics.engine.histogram import Histogram
from mock_llm.launch import MockProcess

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILES = ROOT / "locustfiles"


def hist_of(doc: dict[str, Any], metric: str, **filt: str) -> Histogram:
    """The merge of every series of ``metric`` in a JSON summary (or a worker's record) whose tags contain ``filt``."""
    h = Histogram()
    for m in doc["metrics"]:
        if m["name"] == metric and all(m["tags"].get(k) == v for k, v in filt.items()):
            h.merge(Histogram.from_wire(m["hist"]))
    return h


def count_of(doc: dict[str, Any], metric: str, **filt: str) -> float:
    """The sum of the counters ``metric`` in a JSON summary (or a worker's record) whose tags contain ``filt``."""
    return sum(
        c["count"]
        for c in doc["counters"]
        if c["name"] == metric and all(c["tags"].get(k) == v for k, v in filt.items())
    )


@dataclass
class LocustRun:
    returncode: int
    output: str
    summary: dict[str, Any] | None
    summary_path: Path | None = None  # where the summary was asked for: the workers' records are beside it

    def views(self) -> dict[int, dict[str, Any]]:
        """The workers' own records (``<summary>.worker<index>.json``), by Locust's worker index."""
        if self.summary_path is None:
            return {}
        stem = self.summary_path.stem
        return {
            int(p.stem.rsplit("worker", 1)[1]): json.loads(p.read_text())
            for p in self.summary_path.parent.glob(f"{stem}.worker*.json")
        }

    def rollup(self, metric: str, scenario: str = "") -> dict[str, Any] | None:
        assert self.summary is not None, self.output[-3000:]
        want = {"scenario": scenario} if scenario else {}
        for r in self.summary["rollups"]:
            if r["name"] == metric and r["tags"] == want:
                return r
        return None

    def hist(self, metric: str, **filt: str) -> Histogram:
        """The merge of every series of ``metric`` whose tags contain ``filt``."""
        assert self.summary is not None, self.output[-3000:]
        return hist_of(self.summary, metric, **filt)

    def counter(self, metric: str, **filt: str) -> float:
        assert self.summary is not None, self.output[-3000:]
        return count_of(self.summary, metric, **filt)

    def worker_counts(self, metric: str, **filt: str) -> list[float]:
        """``counter`` in each worker's own record, by worker index."""
        return [count_of(v, metric, **filt) for _, v in sorted(self.views().items())]

    def workers_hist(self, metric: str, **filt: str) -> Histogram:
        """The union of what the workers measured of ``metric`` (their own records), to hold against ``hist``."""
        union = Histogram()
        for view in self.views().values():
            union.merge(hist_of(view, metric, **filt))
        return union

    def rate(self, metric: str, **filt: str) -> tuple[int, int]:
        assert self.summary is not None, self.output[-3000:]
        hits = total = 0
        for r in self.summary["rates"]:
            if r["name"] == metric and all(r["tags"].get(k) == v for k, v in filt.items()):
                hits += r["hits"]
                total += r["total"]
        return hits, total


_FREE_PORTS = range(20000, 32768)
"""Below Linux's ephemeral range (32768-60999): the kernel never hands these out as the source port of a
connection, so the many connections of tests running at once cannot take a port between this check and the
server's bind (a port from ``bind(0)`` is ephemeral: one was taken that way, "Address already in use")."""


def floats_around(x: float, n: int, step: int = 1) -> list[float]:
    """``x`` and the ``n`` floats on each side of it, ``step`` floats apart (bucket bounds: where rounding decides):
    ``[x, below 1, above 1, below 2, above 2, ...]``."""
    out = [x]
    lo = hi = x
    for _ in range(n):
        for _ in range(step):
            lo = math.nextafter(lo, 0.0)
            hi = math.nextafter(hi, math.inf)
        out += [lo, hi]
    return out


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a test starts), outside the ephemeral range."""
    rng = random.Random()  # seeded by the OS: test processes running at once pick different ports
    for _ in range(50):
        port = rng.choice(_FREE_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # every try taken: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_requests(sock: Any) -> Iterator[tuple[bytes, bytes]]:
    """Each HTTP/1.1 request a client sends on ``sock`` (head without its blank line, body of Content-Length
    bytes), until it closes. For the raw test servers that keep the exact bytes of what a client sends."""
    buf = b""
    while (got := _read_http_request(sock, buf)) is not None:
        head, body, buf = got
        yield head, body


def _read_http_request(sock: Any, buf: bytes) -> tuple[bytes, bytes, bytes] | None:
    """One request read from ``sock`` after the bytes ``buf`` already read from it: (head, body, the bytes read
    past it), or None when the peer closed before a whole head."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").lower().split("\r\n")
    length = next((int(line[15:]) for line in lines if line.startswith("content-length:")), 0)
    while len(buf) < length:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    return head, buf[:length], buf[length:]


def missing_tool(reason: str) -> None:
    """A tool a test needs is missing: with ``CI=true`` the test fails (CI must run every test), elsewhere it is
    skipped; either way the message says what to install."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing tool fails the run instead of skipping the test)", pytrace=False)
    pytest.skip(reason)


def locust_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "PYTEST_"))}
    for knob in ("BASE", "BASE_URL", "OSIRIS_URL", "API_KEY", "LOADTEST_TOKEN", "THRESHOLDS", "SUMMARY_JSON", "API"):
        env.pop(knob, None)
    env["PYTHONUNBUFFERED"] = "1"
    # The saturation guard judges the machine: with tests running in parallel on two cores it would turn
    # verdicts into 98 in tests about something else. It still measures and prints; the tests of the guard
    # itself (test_trustworthy_verdict.py) set ACCEPT_SATURATION to "false" to have it judge.
    env["ACCEPT_SATURATION"] = "true"
    # Likewise a schedule not kept (arrivals late or dropped because the test processes share the cores) turns a
    # verdict into 98; the tests of schedule adherence (test_open_model_start.py) set it to "false".
    env["ACCEPT_SCHEDULE_MISS"] = "true"
    env.update(extra or {})
    return env


def run_locust(
    locustfile: str,
    args: list[str],
    env: dict[str, str],
    tmp_path: Path,
    timeout: float = 90.0,
) -> LocustRun:
    """Run ``locust -f locustfiles/<locustfile> <args>`` headless; read the JSON summary it writes."""
    summary = tmp_path / f"summary-{len(list(tmp_path.iterdir()))}.json"
    full_env = locust_env({"SUMMARY_JSON": str(summary), **env})
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES / locustfile), "--headless", *args]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    return LocustRun(proc.returncode, proc.stdout + proc.stderr, read_summary(summary), summary)


def read_summary(path: Path) -> dict[str, Any] | None:
    """The JSON summary at ``path``, None when the run wrote none."""
    data: dict[str, Any] | None = json.loads(path.read_text()) if path.exists() else None
    return data


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``cond`` every 50 ms until it returns something true (returned); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def locust_cmd(locustfile: str) -> list[str]:
    """``python -m locust -f`` the suite's locustfile(s) (comma-separated names under locustfiles/)."""
    return [sys.executable, "-m", "locust", "-f", ",".join(str(LOCUSTFILES / f) for f in locustfile.split(","))]


def start_worker(locust: list[str], port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``<locust> --worker`` connecting to a master on 127.0.0.1:``port``, its output in ``log``; the caller stops
    it (``Cluster`` does for its own)."""
    with open(log, "w") as out:
        return subprocess.Popen(
            [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip


class Cluster:
    """A headless master on a free port of 127.0.0.1 and the workers a test adds, as a context manager.

    ``env`` goes through ``locust_env`` (``SUMMARY_JSON`` defaults to ``tmp/summary.json``); the master's output
    goes to ``tmp/master.log``, each worker's to ``tmp/worker-process-<n>.log``. On leaving the ``with`` block,
    normally or by an exception (a failed assertion, pytest-timeout), every process still running is killed.
    """

    def __init__(
        self,
        tmp: Path,
        env: dict[str, str],
        master_args: list[str],
        *,
        locustfile: str = "chat.py",
        port: int | None = None,
    ) -> None:
        self.tmp = tmp
        self.locust = locust_cmd(locustfile)
        self.env = locust_env({"SUMMARY_JSON": str(tmp / "summary.json"), **env})
        self.summary = Path(self.env["SUMMARY_JSON"])
        self.port = port or free_port()
        self.master_log = tmp / "master.log"
        bind = ["--master-bind-host", "127.0.0.1", "--master-bind-port", str(self.port)]
        with open(self.master_log, "w") as log:
            self.master = subprocess.Popen(
                [*self.locust, "--master", "--headless", *bind, *master_args],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.workers: list[subprocess.Popen[bytes]] = []

    def add_worker(self, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
        """Start a worker connecting to the master (``env``: instead of the cluster's, through ``locust_env``)."""
        log = log or self.tmp / f"worker-process-{len(self.workers)}.log"
        w = start_worker(self.locust, self.port, self.env if env is None else locust_env(env), log)
        self.workers.append(w)
        return w

    def finish(self, timeout: float, worker_timeout: float = 15.0) -> LocustRun:
        """Wait for the master (at most ``timeout`` s) and the workers (``worker_timeout`` s); the master's run."""
        self.master.wait(timeout)
        for w in self.workers:
            w.wait(worker_timeout)
        return LocustRun(self.master.returncode, self.master_log.read_text(), read_summary(self.summary), self.summary)

    def stop(self) -> None:
        """Kill every process still running (the master and workers that already ended are left as they are)."""
        for p in (self.master, *self.workers):
            if p.poll() is None:
                p.kill()
                p.wait()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def run_distributed(
    locustfile: str, args: list[str], env: dict[str, str], tmp_path: Path, *, workers: int = 2, timeout: float = 90.0
) -> LocustRun:
    """``locust --master --headless --expect-workers N <args>`` and N workers on loopback; the master's run (its
    summary in ``tmp_path/summary.json``, the workers' records beside it: ``run.views()``)."""
    with Cluster(tmp_path, env, ["--expect-workers", str(workers), *args], locustfile=locustfile) as cluster:
        for _ in range(workers):
            cluster.add_worker()
        return cluster.finish(timeout)


class SchedulingNoise:
    """The machine's scheduling noise while a test runs: a thread of the test process asks to wake every 2 ms
    and records how late it woke (ms). On a quiet machine p99 is ~0.1 ms; with other processes on the cores it
    grows with them. Timing tests add ``p(99)`` to their absolute bounds, so that a bound keeps its meaning
    (the suite's own error) on a busy machine instead of failing for the machine's sake.

    Use as a context manager around the run whose timing is checked.
    """

    PERIOD_S = 0.002

    def __init__(self) -> None:
        self.late_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, name="scheduling-noise", daemon=True)

    def _probe(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            time.sleep(self.PERIOD_S)
            self.late_ms.append((time.perf_counter() - t - self.PERIOD_S) * 1000.0)

    def __enter__(self) -> SchedulingNoise:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def p(self, pct: float) -> float:
        """The ``pct`` percentile of the wake-up lateness in ms (0 when nothing was recorded)."""
        if not self.late_ms:
            return 0.0
        ordered = sorted(self.late_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100.0))]

    def __str__(self) -> str:
        return f"scheduling noise p50 {self.p(50):.2f} ms, p99 {self.p(99):.2f} ms over {len(self.late_ms)} wake-ups"


# --- the soak: a long chat run against a faulty mock, sampled inside the Locust process

SAMPLES_ENV = "SOAK_SAMPLES"
SAMPLER = '''"""The chat suite plus a sampler of the process's RSS, fds and greenlets (tests/support.py: run_soak)."""
import gc
import json
import os
import sys
import time

sys.path.insert(0, {root!r})

import gevent
import greenlet
import psutil
from locust import events

from locustfiles.chat import *  # noqa: F403  the suite as users run it


@events.init.add_listener
def _start_sampler(environment, **_kw):
    path = os.environ["{env}"]
    proc = psutil.Process()
    samples = []

    def sample():
        while True:
            gevent.sleep(1.0)
            samples.append(
                {{
                    "t": time.monotonic(),
                    "rss": proc.memory_info().rss,
                    "fds": len(os.listdir("/proc/self/fd")),
                    "greenlets": sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet)),
                }}
            )
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(samples, f)
            os.replace(tmp, path)

    gevent.spawn(sample)
'''

FAULTS = [
    {"path": "/v1/chat/completions", "kind": "disconnect", "rate": 0.02},
    {"path": "/v1/chat/completions", "kind": "error", "rate": 0.02},
    {"path": "/v1/chat/completions", "kind": "malformed", "rate": 0.02},
    {"path": "/v1/chat/completions", "kind": "stall", "rate": 0.01, "arg": 3},
]


@dataclass
class Soak:
    samples: list[dict[str, float]]
    returncode: int
    output: str
    summary: dict[str, Any] | None
    mock_stats: dict[str, Any]


def run_soak(
    duration_s: float,
    *,
    users: int = 20,
    stream_rps: float = 10.0,
    nonstream_rps: float = 10.0,
    faults: bool = True,
    workdir: Path | None = None,
) -> Soak:
    """One headless chat run of ``duration_s`` against the mock with faults (disconnects, 500s, broken SSE
    lines, stalls cut by the idle timeout), sampled every second inside the Locust process: RSS, open fds
    (``/proc/self/fd``) and live greenlets. The soak test and ``bench/soak.py`` (10 min) run it."""
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        d = workdir or Path(tmp)
        locustfile = d / "soak_locustfile.py"
        locustfile.write_text(SAMPLER.format(root=str(ROOT), env=SAMPLES_ENV))
        samples_path = d / "samples.json"
        summary_path = d / "summary.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
        mock_conf = {"ttft_ms": 30, "itl_ms": 5, "seed": 5, "faults": FAULTS if faults else []}
        with MockProcess(mock_conf) as mock:
            env.update(
                {
                    "BASE": mock.base_url,
                    "STREAM_RPS": str(stream_rps),
                    "NONSTREAM_RPS": str(nonstream_rps),
                    "MAX_TOKENS": "20",
                    "IDLE_TIMEOUT": "1",
                    "THRESHOLDS": "",
                    "SUMMARY_JSON": str(summary_path),
                    SAMPLES_ENV: str(samples_path),
                    "PYTHONUNBUFFERED": "1",
                }
            )
            cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary"]
            cmd += ["-u", str(users), "-r", str(users), "-t", f"{int(duration_s)}s", "--stop-timeout", "5"]
            proc = subprocess.run(
                cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=duration_s + 60,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            stats = mock.stats()
        samples = json.loads(samples_path.read_text()) if samples_path.exists() else []
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
        return Soak(samples, proc.returncode, proc.stdout + proc.stderr, summary, stats)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def analyze_soak(samples: list[dict[str, float]], warmup_s: float) -> dict[str, Any]:
    """Growth of each measure from the steady start (the first fifth after warm-up) to the end (the last fifth),
    as medians of those windows, and the least-squares slope per minute over the steady part."""
    if not samples:
        return {"samples": 0}
    t0 = samples[0]["t"] - 1.0
    steady = [s for s in samples if s["t"] - t0 >= warmup_s]
    n = max(1, len(steady) // 5)
    head, tail = steady[:n], steady[-n:]
    out: dict[str, Any] = {"samples": len(samples), "steady_samples": len(steady), "steady_s": len(steady)}
    for key, scale, unit in (("rss", 1 / 2**20, "MiB"), ("fds", 1.0, ""), ("greenlets", 1.0, "")):
        start = _median([s[key] * scale for s in head])
        end = _median([s[key] * scale for s in tail])
        xs = [(s["t"] - t0) / 60.0 for s in steady]
        ys = [s[key] * scale for s in steady]
        slope = statistics.linear_regression(xs, ys).slope if len(steady) >= 2 and len(set(xs)) > 1 else 0.0
        out[key] = {
            "unit": unit,
            "start": round(start, 2),
            "end": round(end, 2),
            "growth": round(end - start, 2),
            "max": round(max(ys), 2) if ys else None,
            "slope_per_min": round(slope, 3),
        }
    return out
