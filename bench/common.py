"""Shared pieces of the client benchmarks: the mock and Locust pinned to their cores, the machine's context.

Every process is pinned with ``taskset``: the mock on core 0, the load generator (Locust or k6) on core 1, so
each tool gets one core and results read "per core". Everything binds or connects to 127.0.0.1 only, and every
run is bounded in time (Locust ``-t``, k6 ``duration``, a subprocess timeout on top).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent
MOCK_CORE = "0"
CLIENT_CORE = "1"


def machine() -> str:
    """One line of context for RESULTS.md: date, cores, load average, Python."""
    la = os.getloadavg()
    return (
        f"date {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}, nproc {os.cpu_count()}, "
        f"load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}, python {sys.version.split()[0]}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loadavg() -> float:
    return os.getloadavg()[0]


def need(tool: str) -> None:
    if shutil.which(tool) is None and not (BIN / tool).exists():
        sys.exit(f"{tool} not found")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Mock:
    proc: subprocess.Popen[bytes]
    base_url: str
    args: list[str]

    @property
    def shown(self) -> str:
        return "taskset -c 0 python -m mock_llm " + " ".join(self.args)


@contextmanager
def mock(args: Sequence[str], core: str = MOCK_CORE) -> Iterator[Mock]:
    """``python -m mock_llm ARGS`` on a free port of 127.0.0.1, pinned to ``core``; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-mock-") as tmp:
        pf = Path(tmp) / "port"
        cmd = ["taskset", "-c", core, PY, "-m", "mock_llm", "--host", "127.0.0.1", "--port", "0"]
        cmd += ["--port-file", str(pf), *args]
        log = open(Path(tmp) / "log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while not (pf.exists() and pf.read_text().strip()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mock did not start: {(Path(tmp) / 'log').read_text()}")
                time.sleep(0.05)
            yield Mock(proc, f"http://127.0.0.1:{int(pf.read_text())}", list(args))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


@dataclass
class LocustRun:
    """What the bench probe (bench/locustfile_capacity.py) wrote, plus the command and the mock's CPU."""

    command: str
    probe: dict[str, Any]
    mock_cpu: float  # share of one core used by the mock during the run
    output: str = ""
    returncode: int = 0
    summary: dict[str, Any] = field(default_factory=dict)

    def rate(self) -> float:
        """Completed calls per second over the steady window (after warm-up)."""
        return float(self.probe["steady"]["rate"])

    def cpu(self) -> float:
        """Share of one core the Locust process used over the steady window."""
        return float(self.probe["steady"]["cpu"])

    def fail_ratio(self) -> float:
        s = self.probe["steady"]
        return s["failures"] / max(1, s["requests"] + s["failures"])


def run_locust(
    locustfile: str,
    user_class: str | None,
    host: str,
    *,
    users: int,
    duration_s: float,
    warmup_s: float,
    env: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
    spawn_rate: float | None = None,
    mock_pid: int | None = None,
    core: str = CLIENT_CORE,
    processes: int = 1,
) -> LocustRun:
    """One headless Locust process pinned to ``core``; returns the probe's measurement of the steady window.

    ``processes`` > 1 runs ``--processes N`` (Locust forks N workers and keeps a master, all pinned to ``core``):
    the probe's figures are then added up over the processes (``merge_probes``)."""
    with tempfile.TemporaryDirectory(prefix="bench-locust-") as tmp:
        out = Path(tmp) / "probe.json"
        summary = Path(tmp) / "summary.json"
        rate = spawn_rate if spawn_rate is not None else users
        cmd = [
            "taskset", "-c", core, str(BIN / "locust"), "-f", locustfile, "--headless", "--host", host,
            "-u", str(users), "-r", f"{rate:g}", "-t", f"{round(duration_s)}s", "--stop-timeout", "5",
            "--only-summary", "--loglevel", "WARNING", *extra,
        ]  # fmt: skip
        if processes > 1:  # the master on a free port of 127.0.0.1 (never Locust's default 5557)
            port = free_port()
            cmd += ["--processes", str(processes), "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                    "--master-host", "127.0.0.1", "--master-port", str(port)]  # fmt: skip
        if user_class:
            cmd.append(user_class)
        full_env = dict(os.environ)
        full_env.update({"BENCH_OUT": str(out), "BENCH_WARMUP_S": f"{warmup_s:g}", "SUMMARY_JSON": str(summary)})
        full_env.update(env or {})
        full_env["PYTHONPATH"] = str(ROOT)
        cpu0 = cpu_seconds(mock_pid) if mock_pid else 0.0
        t0 = time.monotonic()
        proc = subprocess.run(
            cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=duration_s + 120, check=False
        )
        wall = time.monotonic() - t0
        mock_cpu = (cpu_seconds(mock_pid) - cpu0) / wall if mock_pid else 0.0
        if not out.exists():
            raise RuntimeError(f"locust wrote no probe output (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        probe = json.loads(out.read_text())
        workers = sorted(Path(tmp).glob("probe.json.worker*"))
        if processes > 1:
            if len(workers) != processes:
                raise RuntimeError(f"{len(workers)} of {processes} worker probes written:\n{proc.stderr[-3000:]}")
            probe = merge_probes(probe, [json.loads(w.read_text()) for w in workers])
        summ = json.loads(summary.read_text()) if summary.exists() else {}
        shown_env = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        shown = (shown_env + " " if shown_env else "") + " ".join(c.replace(str(BIN) + "/", ".venv/bin/") for c in cmd)
        shown = shown.replace(host, "$MOCK")
        return LocustRun(shown, probe, mock_cpu, proc.stdout + proc.stderr, proc.returncode, summ)


def merge_probes(master: dict[str, Any], workers: list[dict[str, Any]]) -> dict[str, Any]:
    """The probe figures of a ``--processes N`` run: rates, requests and CPU shares added up over the workers
    (the master's CPU share added too: it is part of what the run costs), reading delays merged; ``per_process``
    keeps each worker's own steady figures and read delay percentiles."""
    from llm_metrics.engine.histogram import Histogram

    keys = ("rate", "cpu", "requests", "failures")
    steady = {k: sum(float(w["steady"][k]) for w in workers) for k in keys}
    steady["cpu"] += float(master["steady"]["cpu"])
    steady["seconds"] = min(float(w["steady"]["seconds"]) for w in workers)
    delays = Histogram()
    for w in workers:
        delays.merge(Histogram.from_wire(w["delays_wire"]))
    pcts = (50.0, 90.0, 99.0, 99.9)
    merged = {
        **master,
        "steady": steady,
        "total_ok": sum(w["total_ok"] for w in workers),
        "total_failed": sum(w["total_failed"] for w in workers),
        "read_delay_ms": {
            "count": delays.count,
            **{f"p{p:g}": v for p, v in zip(pcts, delays.percentiles(pcts), strict=True)},
            "max": delays.vmax,
        },
        "master_cpu": master["steady"]["cpu"],
        "per_process": [{"steady": w["steady"], "read_delay_ms": w["read_delay_ms"]} for w in workers],
    }
    return merged


def best_median(values: Sequence[float], higher_is_better: bool = True) -> tuple[float, float]:
    """(best, median): other work on a shared machine only ever slows a run, so the best is closest to a quiet core."""
    if not values:
        return float("nan"), float("nan")
    best = max(values) if higher_is_better else min(values)
    return best, statistics.median(values)


def fmt_bm(values: Sequence[float], higher_is_better: bool = True, digits: int = 0) -> str:
    best, med = best_median(values, higher_is_better)
    return f"**{best:,.{digits}f}** (median {med:,.{digits}f}, n={len(values)})"
