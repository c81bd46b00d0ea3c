"""Soak: does a long run stay flat? Memory (RSS), open file descriptors and live greenlets of the Locust process.

    .venv/bin/python bench/soak.py                       # 10 min of the chat suite against the mock, appended
    .venv/bin/python bench/soak.py --duration 1800 --no-record    # to bench/RESULTS.md unless --no-record

The chat suite runs as users run it (``locustfiles/chat.py``, headless, streamed and non-streamed calls at fixed
arrival rates, a few faults so that the error paths run too: disconnects, 500s, broken SSE lines, stalls cut
by the idle timeout). Inside the Locust process a listener samples every second, from the process itself:
RSS (psutil), ``len(os.listdir('/proc/self/fd'))`` and the greenlets alive (``gc``), written to a JSON file.
The verdict compares the steady part of the run (after the warm-up) with its end: growth and slope per
minute. ``tests/integration/test_soak.py`` runs the same, time-scaled, and asserts bounds on the growth; the
run and the analysis are its harness (``tests.support.run_soak``, ``analyze_soak``), run here for longer.

What grows by design: the per-second series of the run (``llm_metrics.engine.timeseries``, for the plots of the HTML
report) keeps one small record per second, a few KiB each; everything else is bounded (histograms per metric
and tag set, Locust's stats per request name).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import Soak, analyze_soak, run_soak  # noqa: E402  the soak test's own harness, run longer


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
    result = analyze_soak(soak.samples, args.warmup)
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
