"""Capacity of the mock server on one core, measured with wrk on another core.

Each server runs pinned to core 0 (``taskset -c 0``), wrk to core 1, on 127.0.0.1, for a bounded time.

  candidates  the two HTTP stacks of bench/mock_stack_candidates.py (raw asyncio+httptools vs aiohttp):
              /health req/s (64 connections) and streamed tokens/s (32 streams of 256 tokens, no delays)
  mock        the real mock (python -m mock_llm): /health req/s; streamed tokens/s of 32 streams of 256
              tokens with itl 0 (one write per token); and scheduled tokens/s: 640 streams of 100 tokens
              with ttft 0 and itl 10 ms (every token a timer wake-up; the schedule asks for 64,000 tok/s)

Usage: python bench/mock_capacity.py [--duration S] [--only candidates|mock]
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
    command: str


_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, conns: int, duration: float, server_pid: int, script: str | None = None) -> Run:
    """Run wrk pinned to core 1 against a server pinned to core 0."""
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration:g}s", "--latency", "--timeout", "10s"]
    shown = " ".join(cmd) + (" -s chat.lua" if script else "") + " " + url
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script or "")
    if script:
        cmd += ["-s", f.name]
    cpu0, t0 = cpu_seconds(server_pid), time.monotonic()
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=duration + 60).stdout
    cpu = (cpu_seconds(server_pid) - cpu0) / (time.monotonic() - t0)
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


def chat_request(tokens: int) -> bytes:
    body = CHAT_BODY % tokens
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    return (head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}").encode()


def row(server: str, scenario: str, run: Run, tokens: int, size: int) -> str:
    if tokens:
        result = f"{run.bytes_per_s / size * tokens:,.0f} tok/s ({run.rps:,.1f} streams/s)"
    else:
        result = f"{run.rps:,.0f} req/s"
    errors = "; ".join(run.errors) or "none"
    return f"| {server} | {scenario} | {result} | {run.cpu:.0%} | {run.p50} | {errors} | `{run.command}` |"


def run_candidates(duration: float, rows: list[str]) -> None:
    kinds = ["raw"]
    if importlib.util.find_spec("aiohttp"):
        kinds.append("aiohttp")
    else:
        rows.append("| aiohttp | skipped: aiohttp not installed | | | | | |")
    for kind in kinds:
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            pf = Path(tmp) / "port"
            cmd = [PY, "bench/mock_stack_candidates.py", kind, "--port", str(port), "--port-file", str(pf)]
            proc = start(cmd, port, pf)
            try:
                base = f"http://127.0.0.1:{port}"
                rows.append(row(kind, "/health, 64 conns", wrk(f"{base}/health", 64, duration, proc.pid), 0, 0))
                size = response_bytes(port, get_request("/stream?n=256"))
                run = wrk(f"{base}/stream?n=256", 32, duration, proc.pid)
                rows.append(row(kind, "32 streams x 256 tokens, no delay", run, 256, size))
            finally:
                stop(proc)


def run_mock(duration: float, rows: list[str]) -> None:
    scenarios = [
        ("/health, 64 conns", ["--itl-ms", "0"], "/health", 64, 0),
        (
            "32 streams x 256 tokens, ttft 0, itl 0",
            ["--ttft-ms", "0", "--itl-ms", "0"],
            "/v1/chat/completions",
            32,
            256,
        ),
        (
            "640 streams x 100 tokens, ttft 0, itl 10 ms (asks 64,000 tok/s)",
            ["--ttft-ms", "0", "--itl-ms", "10"],
            "/v1/chat/completions",
            640,
            100,
        ),
        (
            "1280 streams x 100 tokens, ttft 0, itl 10 ms (asks 128,000 tok/s)",
            ["--ttft-ms", "0", "--itl-ms", "10"],
            "/v1/chat/completions",
            1280,
            100,
        ),
    ]
    for name, flags, path, conns, tokens in scenarios:
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            pf = Path(tmp) / "port"
            cmd = [PY, "-m", "mock_llm", "--port", str(port), "--port-file", str(pf), *flags]
            proc = start(cmd, port, pf)
            try:
                url = f"http://127.0.0.1:{port}{path}"
                if tokens:
                    size = response_bytes(port, chat_request(tokens))
                    run = wrk(url, conns, duration, proc.pid, CHAT_LUA % tokens)
                else:
                    size, run = 0, wrk(url, conns, duration, proc.pid)
            finally:
                stop(proc)
        rows.append(row("mock_llm " + " ".join(flags), name, run, tokens, size))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--only", choices=("candidates", "mock"))
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} not found (apt-get install -y {'wrk' if tool == 'wrk' else 'util-linux'})")
            return 2
    rows = [
        "| server | scenario | result | server CPU | wrk p50 | errors | command |",
        "|---|---|---|---|---|---|---|",
    ]
    if args.only in (None, "candidates"):
        run_candidates(args.duration, rows)
    if args.only in (None, "mock"):
        run_mock(args.duration, rows)
    print(
        f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}, nproc: {os.cpu_count()}, "
        f"python {sys.version.split()[0]}"
    )
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
