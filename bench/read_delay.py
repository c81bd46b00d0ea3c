"""How exactly one worker times tokens as open streams grow: the client's reading delay p50/p99 per concurrency.

The mock (core 0) stamps every chunk with ``mock_sent_ns`` just before writing it; the suite's User (core 1,
bench/locustfile_capacity.py ``SuiteStreamUser`` with the full metrics layer and ``SERVER_STAMPS=true``) records
parse time - send stamp for every content event: ``llm_read_delay_ms``, the time a token waited in the kernel
and in the client before the suite stamped it. Each level keeps N streams open all along (N closed-loop Users,
each stream ``--tokens`` tokens at ``--itl-ms`` apart: 20 tokens/s by default), and only events after the
warm-up (every User spawned and one whole stream read) count.

``--processes 1,2`` repeats every level with Locust's ``--processes N`` (N forked workers and a master, the suite's
merged metrics): the reading delays of all workers are merged, the rates and CPU shares added up, and each
worker's own figures printed (per process: what a user multiplies). One process is pinned to core 1 (the mock has
core 0); N > 1 processes get both cores (``--client-cores``, default ``0,1``), so the mock shares core 0 with them.
Each run's saturation guard line (``per process: ...`` of the JSON summary's ``load_generator.per_process``: the
open LLM calls one process held within the event-loop lag limit) is printed under its figures and again at the end.

Usage: python bench/read_delay.py [--levels 10,100,1000,2000] [--duration 30] [--repeat 2] [--itl-ms 50]
       [--processes 1,2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CLIENT_CORE, LocustRun, loadavg, machine, mock, need, run_locust

LOCUSTFILE = "bench/locustfile_capacity.py"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="10,100,500,1000,1500,2000", help="open streams per level, comma-separated")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per run (default 30)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--itl-ms", type=float, default=50.0, help="mock delay between tokens (default 50: 20 tok/s)")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--limit-ms", type=float, default=10.0, help="the p99 bound looked for (default 10 ms)")
    ap.add_argument("--reference", action="store_true", help="decoders as before the speed-ups (BENCH_REFERENCE=1)")
    ap.add_argument("--processes", default="1", help="Locust --processes values to run each level with (e.g. 1,2)")
    ap.add_argument("--client-cores", default="0,1", help="cores of Locust when --processes > 1 (default 0,1)")
    args = ap.parse_args()
    need("taskset")
    levels = [int(x) for x in args.levels.split(",")]
    procs = [int(x) for x in args.processes.split(",")]
    stream_s = (args.itl_ms * args.tokens + args.itl_ms) / 1000.0
    print(machine(), flush=True)
    rows = []
    guard_lines: list[str] = []
    crossed: int | None = None
    env = {"SERVER_STAMPS": "true", "BENCH_TOKENS": str(args.tokens), "BENCH_METRICS": "1"}
    if args.reference:
        env["BENCH_REFERENCE"] = "1"
    margs = ["--ttft-ms", str(args.itl_ms), "--itl-ms", str(args.itl_ms), "--output-tokens", str(args.tokens)]
    with mock(margs) as m:
        print(f"mock: {m.shown}", flush=True)
        for n, nproc in ((n, p) for p in procs for n in levels):
            spawn_rate = min(n, 400)
            warmup = n / spawn_rate + stream_s + 2.0
            runs: list[LocustRun] = []
            loads = []
            for _ in range(args.repeat):
                loads.append(loadavg())
                r = run_locust(LOCUSTFILE, "SuiteStreamUser", m.base_url, users=n, duration_s=args.duration + warmup,
                               warmup_s=warmup, env=env, spawn_rate=spawn_rate, mock_pid=m.proc.pid,
                               processes=nproc, core=CLIENT_CORE if nproc == 1 else args.client_cores)  # fmt: skip
                runs.append(r)
                d = r.probe["read_delay_ms"]
                tps = d["count"] / max(r.probe["steady"]["seconds"], 1e-9)
                for i, pp in enumerate(r.probe.get("per_process", [])):
                    pd = pp["read_delay_ms"]
                    print(f"      process {i + 1}: p50 {pd['p50']:.3f} ms  p99 {pd['p99']:.3f} ms  "
                          f"events {pd['count']}  "
                          f"tokens/s {pd['count'] / max(pp['steady']['seconds'], 1e-9):,.0f}  "
                          f"cpu {pp['steady']['cpu']:.2f}", flush=True)  # fmt: skip
                print(f"{n:5} streams x {nproc} proc: p50 {d['p50']:.3f} ms  p99 {d['p99']:.3f} ms  "
                      f"p99.9 {d['p99.9']:.3f} ms  "
                      f"events {d['count']}  tokens/s {tps:,.0f}  locust cpu {r.cpu():.2f}  mock cpu {r.mock_cpu:.2f}  "
                      f"fail {r.probe['steady']['failures']}  load {loads[-1]:.2f}", flush=True)  # fmt: skip
                guard = guard_line(r.summary)
                guard_lines.append(f"{n:,} streams x {nproc} proc: {guard}")
                print(f"      guard: {guard}", flush=True)
            p50s = [r.probe["read_delay_ms"]["p50"] for r in runs]
            p99s = [r.probe["read_delay_ms"]["p99"] for r in runs]
            p999 = [r.probe["read_delay_ms"]["p99.9"] for r in runs]
            tps = [r.probe["read_delay_ms"]["count"] / max(r.probe["steady"]["seconds"], 1e-9) for r in runs]
            cpu = [r.cpu() for r in runs]
            best = min(range(len(runs)), key=lambda i: p99s[i])
            if crossed is None and min(p99s) > args.limit_ms:
                crossed = n
            rows.append(
                f"| {n:,} | {nproc} | {min(p50s):.2f} ({statistics.median(p50s):.2f}) | **{min(p99s):.2f}** "
                f"({statistics.median(p99s):.2f}) | {min(p999):.2f} ({statistics.median(p999):.2f}) "
                f"| {statistics.median(tps):,.0f} | {statistics.median(cpu):.0%} | {runs[best].mock_cpu:.0%} "
                f"| {sum(r.probe['steady']['failures'] for r in runs)} | {min(loads):.2f}-{max(loads):.2f} |"
            )
    print_results(rows, guard_lines, crossed, levels[-1], args.limit_ms, runs[-1].command)
    return 0


def print_results(
    rows: list[str], guard_lines: list[str], crossed: int | None, top: int, limit_ms: float, command: str
) -> None:
    """The table of every level, where p99 crossed the limit, and the guard's line of each run."""
    print()
    print(machine())
    print()
    print("| open streams | processes | read delay p50 ms: best (median) | p99 ms: best (median) "
          "| p99.9 ms: best (median) "
          "| tokens/s read (median) | Locust CPU | mock CPU | failures | load average |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    if crossed is None:
        print(f"p99 stayed at or below {limit_ms:g} ms up to {top:,} open streams (best run of each level)")
    else:
        print(f"p99 first above {limit_ms:g} ms at {crossed:,} open streams (best run of the level)")
    print("the saturation guard's per-process line of each run:")
    print("\n".join(f"  {line}" for line in guard_lines))
    print("command of the last run, as run:", command)


def guard_line(summary: dict[str, Any]) -> str:
    """The ``per process: ...`` line of a run's JSON summary (``load_generator.per_process.text``)."""
    per_process = (summary.get("load_generator") or {}).get("per_process") or {}
    return str(per_process.get("text") or "no per-process line in the run's JSON summary")


if __name__ == "__main__":
    sys.exit(main())
