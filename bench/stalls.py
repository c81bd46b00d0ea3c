"""Hub stalls at N open streams in one process: reading delay, loop lag, garbage-collection pauses, blocked greenlets.

One run of ``bench/locustfile_gc.py`` (``SuiteStreamUser``, metrics on, ``SERVER_STAMPS=true``; the mock on core 0,
Locust on core 1) with gevent's monitor thread on (``GEVENT_MAX_BLOCKING_TIME``, default 20 ms): prints the steady
read delay, the loop-lag probe, the GC pauses per generation and the stacks gevent reported as blocking.

Usage: python bench/stalls.py [--streams 1000] [--duration 15] [--env '{"GC_FREEZE": "1"}']
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import loadavg, machine, mock, need, run_locust
from llm_metrics.engine.histogram import Histogram


def merged(summary: dict, metric: str) -> Histogram:
    h = Histogram()
    for m in summary.get("metrics", []):
        if m["name"] == metric:
            h.merge(Histogram.from_wire(m["hist"]))
    return h


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--env", default="{}", help="extra environment of the Locust process (JSON)")
    ap.add_argument("--blocking-ms", type=float, default=20.0)
    args = ap.parse_args()
    need("taskset")
    n = args.streams
    with tempfile.TemporaryDirectory() as tmp:
        gc_out = str(Path(tmp) / "gc.json")
        env = {
            "SERVER_STAMPS": "true", "BENCH_TOKENS": "64", "BENCH_METRICS": "1", "GC_OUT": gc_out,
            "GEVENT_MONITOR_THREAD_ENABLE": "true", "GEVENT_MAX_BLOCKING_TIME": str(args.blocking_ms / 1000),
            **json.loads(args.env),
        }  # fmt: skip
        margs = ["--ttft-ms", "50", "--itl-ms", "50", "--output-tokens", "64"]
        print(machine(), flush=True)
        load = loadavg()
        with mock(margs) as m:
            warm = n / min(n, 400) + 3.25 + 2
            r = run_locust("bench/locustfile_gc.py", "SuiteStreamUser", m.base_url, users=n,
                           duration_s=args.duration + warm, warmup_s=warm, env=env, spawn_rate=min(n, 400),
                           mock_pid=m.proc.pid)  # fmt: skip
        gc_pauses = json.loads(Path(gc_out).read_text()) if Path(gc_out).exists() else {}
    d = r.probe["read_delay_ms"]
    lag = merged(r.summary, "client_loop_lag_ms")
    l50, l99, lmax = lag.percentiles((50.0, 99.0, 100.0))
    print(
        f"{n} streams, load {load:.2f}: read delay (steady) p50 {d['p50']:.2f} p99 {d['p99']:.2f} "
        f"p99.9 {d['p99.9']:.2f} ms; loop lag p50 {l50:.2f} p99 {l99:.2f} max {lmax:.1f} ms; cpu {r.cpu():.2f}"
    )
    for gen, g in sorted(gc_pauses.items()):
        print(f"gc gen {gen}: {g['n']} collections, max {g['max_ms']:.1f} ms, sum {g['sum_ms']:.0f} ms, "
              f"{g['over10']} over 10 ms")  # fmt: skip
    stacks = r.output.split("appears to be blocked")[1:]
    print(f"gevent monitor: {len(stacks)} blocking reports")
    c: Counter[str] = Counter()
    for st in stacks:
        frames = [ln.strip() for ln in st.splitlines() if ln.strip().startswith("File")]
        c[" | ".join(f.split("site-packages/")[-1] for f in frames[-3:])] += 1
    for k, v in c.most_common(8):
        print(v, k[:300])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
