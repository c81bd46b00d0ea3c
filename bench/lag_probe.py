"""Does the load generator's own loop-lag probe tell the truth? ``client_loop_lag_ms`` against ``llm_read_delay_ms``.

``llm_read_delay_ms`` is the truth we have against the mock only: the mock stamps each chunk just before
writing it (``SERVER_STAMPS=true``), the suite records parse time - stamp. ``client_loop_lag_ms`` is the probe
that works against any server (``llm_metrics.monitors.selfmon``: how late a greenlet woke). Both come from the same
run's
JSON summary (whole run, warm-up included, as the saturation guard sees it), at N open streams (N closed-loop
suite Users, 64 tokens at 20 tokens/s each; bench/locustfile_capacity.py ``SuiteStreamUser``, metrics on).
The probe is useful when its p99 is within a factor of 2 of the read delay's.

Usage: python bench/lag_probe.py [--levels 200,1000] [--duration 20] [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import loadavg, machine, mock, need, run_locust
from llm_metrics.engine.histogram import Histogram

LOCUSTFILE = "bench/locustfile_capacity.py"


def merged(summary: dict[str, Any], metric: str) -> Histogram:
    h = Histogram()
    for m in summary.get("metrics", []):
        if m["name"] == metric:
            h.merge(Histogram.from_wire(m["hist"]))
    return h


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="200,1000", help="open streams per level, comma-separated")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per run after the warm-up (default 20)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--itl-ms", type=float, default=50.0)
    ap.add_argument("--tokens", type=int, default=64)
    args = ap.parse_args()
    need("taskset")
    stream_s = (args.itl_ms * args.tokens + args.itl_ms) / 1000.0
    print(machine(), flush=True)
    rows = []
    env = {"SERVER_STAMPS": "true", "BENCH_TOKENS": str(args.tokens), "BENCH_METRICS": "1"}
    margs = ["--ttft-ms", str(args.itl_ms), "--itl-ms", str(args.itl_ms), "--output-tokens", str(args.tokens)]
    with mock(margs) as m:
        for n in (int(x) for x in args.levels.split(",")):
            spawn_rate = min(n, 400)
            warmup = n / spawn_rate + stream_s + 2.0
            for _ in range(args.repeat):
                load = loadavg()
                r = run_locust(LOCUSTFILE, "SuiteStreamUser", m.base_url, users=n, duration_s=args.duration + warmup,
                               warmup_s=warmup, env=env, spawn_rate=spawn_rate, mock_pid=m.proc.pid)  # fmt: skip
                delay = merged(r.summary, "llm_read_delay_ms")
                lag = merged(r.summary, "client_loop_lag_ms")
                cpu = merged(r.summary, "client_cpu_pct")
                d50, d99, d999 = delay.percentiles((50.0, 99.0, 99.9))
                l50, l99, l999 = lag.percentiles((50.0, 99.0, 99.9))
                ratio = (l99 or 0.0) / d99 if d99 else float("nan")
                gen = r.summary.get("load_generator", {})
                row = (
                    f"| {n:,} | {d50:.2f} | {d99:.2f} | {d999:.2f} | {l50:.2f} | {l99:.2f} | {l999:.2f} | {ratio:.2f} "
                    f"| {cpu.mean or 0:.0f}% | {'yes' if gen.get('saturated') else 'no'} | {load:.2f} |"
                )
                print(row, flush=True)
                rows.append(row)
    print()
    print(machine())
    print()
    print(
        "| open streams | read delay p50 ms | p99 ms | p99.9 ms | loop lag p50 ms | p99 ms | p99.9 ms "
        "| lag p99 / delay p99 | client CPU avg | saturated | load avg |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
