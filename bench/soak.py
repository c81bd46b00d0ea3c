"""Soak: does a long run stay flat? Memory (RSS), open file descriptors and live greenlets of the Locust process.

    .venv/bin/python bench/soak.py                       # 10 min of the chat suite against the mock, appended
    .venv/bin/python bench/soak.py --duration 1800 --no-record    # to bench/RESULTS.md unless --no-record

The chat suite runs as users run it (``locustfiles/chat.py``, headless, streamed and non-streamed calls at fixed
arrival rates, a few faults so that the error paths run too: disconnects, 500s, broken SSE lines, stalls cut
by the idle timeout). Inside the Locust process a listener samples every second, from the process itself:
RSS (psutil), ``len(os.listdir('/proc/self/fd'))`` and the greenlets alive (``gc``), written to a JSON file.
The verdict compares the steady part of the run (after the warm-up) with its end: growth and slope per
minute. ``tests/integration/test_soak.py`` runs the same, time-scaled, and asserts bounds on the growth.

What grows by design: the per-second series of the run (``llm_metrics.engine.timeseries``, for the plots of the HTML
report) keeps one small record per second, a few KiB each; everything else is bounded (histograms per metric
and tag set, Locust's stats per request name).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mock_llm.launch import MockProcess  # noqa: E402

SAMPLES_ENV = "SOAK_SAMPLES"
SAMPLER = '''"""The chat suite plus a sampler of the process's RSS, fds and greenlets (bench/soak.py)."""
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
    """One headless chat run of ``duration_s`` against the mock, sampled every second (module docstring)."""
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


def analyze(samples: list[dict[str, float]], warmup_s: float) -> dict[str, Any]:
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


def _record(args: argparse.Namespace, soak: Soak, result: dict[str, Any]) -> str:
    calls = soak.mock_stats["requests"].get("POST /v1/chat/completions", 0)
    rows = [
        f"| {label} | {result[k]['start']} | {result[k]['end']} | {result[k]['growth']} | "
        f"{result[k]['max']} | {result[k]['slope_per_min']} |"
        for k, label in (("rss", "RSS (MiB)"), ("fds", "open fds"), ("greenlets", "greenlets"))
    ]
    from bench.common import machine

    return "\n".join(
        [
            "",
            f"## Soak: {args.duration / 60:.0f} min of the chat suite",
            "",
            f"Command: `.venv/bin/python bench/soak.py --duration {args.duration} --users {args.users} "
            f"--stream-rps {args.stream_rps} --nonstream-rps {args.nonstream_rps}`; {machine()}. The chat suite "
            f"against the mock with faults (2% disconnects, 2% 500s, 2% broken SSE lines, 1% 3 s stalls cut by "
            f"IDLE_TIMEOUT=1); {calls} calls; exit code {soak.returncode}. Sampled every second inside the "
            f"Locust process; start = median of the first fifth after {args.warmup:.0f} s of warm-up, end = "
            "median of the last fifth, slope = least squares over the steady part.",
            "",
            "| measure | start | end | growth | max | slope per minute |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=600, help="seconds (default 600)")
    ap.add_argument("--warmup", type=float, default=30.0)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--stream-rps", type=float, default=10.0)
    ap.add_argument("--nonstream-rps", type=float, default=10.0)
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()
    started = time.monotonic()
    soak = run_soak(args.duration, users=args.users, stream_rps=args.stream_rps, nonstream_rps=args.nonstream_rps)
    result = analyze(soak.samples, args.warmup)
    print(json.dumps(result, indent=2))
    print(f"ran {time.monotonic() - started:.0f} s, exit code {soak.returncode}")
    if soak.returncode not in (0, 1) or not soak.samples:
        print(soak.output[-3000:])
        sys.exit(1)
    if not args.no_record:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write(_record(args, soak, result))


if __name__ == "__main__":
    main()
