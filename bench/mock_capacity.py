"""Capacity of the mock server on one core, measured with wrk on another core.

Each server runs pinned to core 0 (``taskset -c 0``), wrk to core 1, on 127.0.0.1, for a bounded time.

  candidates  the two HTTP stacks of bench/mock_stack_candidates.py (raw asyncio+httptools vs aiohttp, both on
              uvloop): /health req/s (64 connections) and streamed tokens/s (32 streams of 256 tokens, no
              delay, one write per token)
  mock        the real mock (python -m mock_llm, ttft 0): /health req/s; 32 streams of 256 tokens with itl 0
              (tokens already due go out up to 16 per write); and scheduled tokens/s: 640 or 1280 streams of
              100 tokens with itl 10 ms, where every token waits for its deadline (the schedule asks for
              64,000 or 128,000 tok/s; the measured rate shows how close the mock keeps up); and 2000 streams of
              64 tokens with ttft = itl = 50 ms, every chunk stamped with mock_sent_ns (X-Mock-Timestamps: 1), as
              the suite's open-stream runs ask (bench/read_delay.py)
  scheduled   only the mock's paced streams (itl 10 and 50 ms): its CPU per scheduled token

Each scenario runs --repeat times; the best run is shown first (other work on a shared machine only ever
lowers a run, so the best is the closest to the capacity of a quiet core), then the median and the minimum.
"per server CPU-second" divides the best result by the server's CPU share in that run (from /proc); "server CPU
us per token or request" is the median over the runs of the server's CPU time per token (or request), and in
brackets of its user-mode time alone (the kernel's part, mostly the socket writes, does not change with the
mock's Python code).
Tokens/s is wrk's bytes/s divided by the size of one response, times its tokens: wrk counts the bytes of the
responses still in flight when it stops, which completed requests/s would miss for 1 s long streams.

Usage: python bench/mock_capacity.py [--duration S] [--repeat N] [--only candidates|mock|scheduled]
Needs wrk (apt-get install wrk) and taskset; the aiohttp candidate needs aiohttp (skipped without it).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CHAT_BODY = '{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":%d}'
CHAT_LUA = f"""wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{CHAT_BODY}'
"""
STAMPS_LUA = 'wrk.headers["X-Mock-Timestamps"] = "1"\n'  # every chunk stamped with mock_sent_ns, as the suite asks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], port: int, port_file: Path) -> subprocess.Popen[bytes]:
    """Start a server pinned to core 0 and wait until its port answers."""
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc
            except OSError:
                pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {cmd}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not start: {cmd}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Run:
    """One wrk run: requests/s, bytes/s read, p50 latency, error lines, server CPU share, command."""

    rps: float
    bytes_per_s: float
    p50: str
    errors: list[str]
    cpu: float
    user: float  # the server's user-mode share (the rest of ``cpu`` is the kernel's, mostly the sockets' writes)
    command: str


_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def cpu_seconds(pid: int, user_only: bool = False) -> float:
    """CPU seconds of a process so far: user + system time, or user time only."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + (0 if user_only else int(fields[12]))) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, conns: int, duration: float, server_pid: int, script: str | None = None) -> Run:
    """Run wrk pinned to core 1 against a server pinned to core 0."""
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration:g}s", "--latency", "--timeout", "10s"]
    shown = " ".join(cmd) + (" -s chat.lua" if script else "") + " " + url
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script or "")
    if script:
        cmd += ["-s", f.name]
    cpu0, user0, t0 = cpu_seconds(server_pid), cpu_seconds(server_pid, True), time.monotonic()
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=duration + 60).stdout
    elapsed = time.monotonic() - t0
    cpu, user = (cpu_seconds(server_pid) - cpu0) / elapsed, (cpu_seconds(server_pid, True) - user0) / elapsed
    os.unlink(f.name)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", out)
    if not rps or not transfer:
        raise RuntimeError("unexpected wrk output:\n" + out)
    errors = [ln.strip() for ln in out.splitlines() if "Socket errors" in ln or "Non-2xx" in ln]
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    return Run(
        float(rps.group(1)),
        float(transfer.group(1)) * _UNITS[transfer.group(2)],
        p50.group(1) if p50 else "?",
        errors,
        cpu,
        user,
        shown,
    )


def response_bytes(port: int, request: bytes) -> int:
    """Size of one whole response (headers and chunk framing), to turn wrk's bytes/s into tokens/s.

    wrk counts every byte read, including the responses still in flight when it stops, so bytes/s is
    exact for long streams where completed requests/s undercounts."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while not data.endswith(b"\r\n0\r\n\r\n") and (chunk := sock.recv(65536)):
            data += chunk
    return len(data) - data.lower().count(b"connection: close\r\n") * len(b"connection: close\r\n")


def get_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


def chat_request(tokens: int, stamps: bool = False) -> bytes:
    body = CHAT_BODY % tokens
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "X-Mock-Timestamps: 1\r\n" if stamps else ""
    return (head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}").encode()


@dataclass
class Scenario:
    server: str  # label
    cmd: list[str]  # the server command; PORT and PORTFILE are substituted
    name: str
    path: str
    conns: int
    tokens: int  # streamed tokens per request; 0: count requests
    stream_query: bool = False  # candidates: tokens asked in the query string, GET
    stamps: bool = False  # the requests ask for mock_sent_ns stamps (X-Mock-Timestamps: 1)


def scenarios() -> list[Scenario]:
    out = []
    kinds = ["raw", "aiohttp"] if importlib.util.find_spec("aiohttp") else ["raw"]
    for kind in kinds:
        cmd = [PY, "bench/mock_stack_candidates.py", kind, "--port", "PORT", "--port-file", "PORTFILE"]
        out += [
            Scenario(f"candidate {kind}", cmd, "/health, 64 conns", "/health", 64, 0),
            Scenario(f"candidate {kind}", cmd, "32 streams x 256 tokens, no delay", "/stream?n=256", 32, 256, True),
        ]
    mock = [PY, "-m", "mock_llm", "--port", "PORT", "--port-file", "PORTFILE", "--ttft-ms", "0"]
    out += [
        Scenario("mock_llm", mock, "/health, 64 conns", "/health", 64, 0),
        Scenario("mock_llm --itl-ms 0", [*mock, "--itl-ms", "0"], "32 streams x 256 tokens, itl 0",
                 "/v1/chat/completions", 32, 256),
        Scenario("mock_llm --itl-ms 10", [*mock, "--itl-ms", "10"],
                 "640 streams x 100 tokens, itl 10 ms (schedule asks 64,000 tok/s)", "/v1/chat/completions", 640, 100),
        Scenario("mock_llm --itl-ms 10", [*mock, "--itl-ms", "10"],
                 "1280 streams x 100 tokens, itl 10 ms (schedule asks 128,000 tok/s)", "/v1/chat/completions", 1280,
                 100),
        Scenario("mock_llm --ttft-ms 50 --itl-ms 50", [*mock[:-1], "50", "--itl-ms", "50"],
                 "2000 streams x 64 tokens, itl 50 ms, stamped (schedule asks 40,000 tok/s)", "/v1/chat/completions",
                 2000, 64, stamps=True),
    ]  # fmt: skip
    return out


def measure(sc: Scenario, duration: float, repeat: int) -> tuple[list[float], list[Run]]:
    """Start the server once, run wrk ``repeat`` times; the values are req/s or tok/s."""
    port = free_port()
    runs, values = [], []
    with tempfile.TemporaryDirectory() as tmp:
        pf = Path(tmp) / "port"
        cmd = [str(port) if c == "PORT" else str(pf) if c == "PORTFILE" else c for c in sc.cmd]
        proc = start(cmd, port, pf)
        try:
            url = f"http://127.0.0.1:{port}{sc.path}"
            script = (
                CHAT_LUA % sc.tokens + (STAMPS_LUA if sc.stamps else "") if sc.tokens and not sc.stream_query else None
            )
            size = 0
            if sc.tokens:
                request = get_request(sc.path) if sc.stream_query else chat_request(sc.tokens, sc.stamps)
                size = response_bytes(port, request)
            for _ in range(repeat):
                run = wrk(url, sc.conns, duration, proc.pid, script)
                runs.append(run)
                values.append(run.bytes_per_s / size * sc.tokens if sc.tokens else run.rps)
        finally:
            stop(proc)
    return values, runs


def row(sc: Scenario, values: list[float], runs: list[Run]) -> str:
    unit = "tok/s" if sc.tokens else "req/s"
    best = max(range(len(values)), key=values.__getitem__)
    others = f" (median {statistics.median(values):,.0f}, min {min(values):,.0f})" if len(values) > 1 else ""
    per_cpu = values[best] / runs[best].cpu if runs[best].cpu > 0 else 0.0
    # server CPU per token or request of every run (us), median: steadier than the best run's share alone
    pairs = [(r, v) for r, v in zip(runs, values, strict=True) if v > 0]
    us = statistics.median(r.cpu / v * 1e6 for r, v in pairs) if pairs else 0.0
    us_user = statistics.median(r.user / v * 1e6 for r, v in pairs) if pairs else 0.0
    errors = "; ".join(e for r in runs for e in r.errors) or "none"
    return (f"| {sc.server} | {sc.name} | {values[best]:,.0f} {unit}{others} | {runs[best].cpu:.0%} | {per_cpu:,.0f} "
            f"| {us:.2f} (user {us_user:.2f}) | {runs[best].p50} | {errors} | `{runs[best].command}` |")  # fmt: skip


def wanted(sc: Scenario, only: str | None) -> bool:
    """``--only``: candidates, mock (every mock scenario), scheduled (the mock's paced streams only)."""
    if only == "candidates":
        return sc.server.startswith("candidate")
    if only == "mock":
        return sc.server.startswith("mock")
    if only == "scheduled":
        return sc.server.startswith("mock") and "itl 0" not in sc.name and sc.tokens > 0
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument(
        "--only", choices=("candidates", "mock", "scheduled"), help="scheduled: the mock's paced streams"
    )
    parser.add_argument("--repeat", type=int, default=5, help="wrk runs per scenario (default 5)")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} not found (apt-get install -y {'wrk' if tool == 'wrk' else 'util-linux'})")
            return 2
    rows = [
        "| server | scenario | result: best run (median, min) | server CPU | per server CPU-second "
        "| server CPU us per token or request (median of runs) | wrk p50 latency | errors | command |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if not importlib.util.find_spec("aiohttp"):
        rows.append("| candidate aiohttp | skipped: aiohttp not installed (pip install aiohttp) | | | | | | | |")
    for sc in scenarios():
        if not wanted(sc, args.only):
            continue
        rows.append(row(sc, *measure(sc, args.duration, args.repeat)))
        print(rows[-1], file=sys.stderr, flush=True)
    print(
        f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}, nproc: {os.cpu_count()}, "
        f"python {sys.version.split()[0]}"
    )
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
