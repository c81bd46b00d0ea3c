"""How much load one Locust worker process of this suite drives, and what the metrics layer costs.

The mock (``--ttft-ms 0 --itl-ms 0``: answers as fast as it can, never the bottleneck, bench/RESULTS.md) runs on
core 0, one Locust process on core 1 with closed-loop Users of bench/locustfile_capacity.py (50 by default, no
wait), for a bounded time. Variants, interleaved so that other work on the machine hits them alike:

  stream     suite + metrics   SuiteStreamUser: llm_call(stream=True) with install_metrics (the full suite)
             suite, no metrics SuiteStreamUser with BENCH_METRICS=0 (client code only, Locust's own stats)
             bare loop         BareStreamUser: FastHttpUser + the same raw reader (iter_arrivals + iter_events)
  nonstream  the same three for stream=False (bare: FastHttpUser POST reading the body)
  stream-before  the stream variants with BENCH_REFERENCE=1: the decoders as they were before the speed-ups
             (sseclient-py alone, json.loads of every chunk), for a before/after under the same conditions

The probe also times each request listener with the thread CPU clock inside the runs: the share of the
process's CPU taken by ``LLMMetrics.on_request`` is the metrics layer's cost measured within one run, which other
work on the machine blurs far less than the ratio of two runs.

Each result is the completed calls per second over the steady window (after the warm-up) and the same per
CPU-second of the Locust process (calls / CPU seconds it used in that window): on a shared machine the process
seldom gets its whole core, and calls per CPU-second is what one free core would give. Ratios (suite / bare,
metrics / no metrics) are taken on the medians per CPU-second.

Usage: python bench/client_capacity.py [--duration 15] [--warmup 5] [--repeat 3] [--users 50] [--tokens 64]
       [--only stream|nonstream]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import LocustRun, best_median, loadavg, machine, mock, need, run_locust

LOCUSTFILE = "bench/locustfile_capacity.py"
VARIANTS = {
    "stream": [
        ("suite + metrics", "SuiteStreamUser", {"BENCH_METRICS": "1"}),
        ("suite, no metrics layer", "SuiteStreamUser", {"BENCH_METRICS": "0"}),
        ("bare FastHttpUser loop", "BareStreamUser", {"BENCH_METRICS": "0"}),
    ],
    "stream-before": [
        ("before: suite + metrics", "SuiteStreamUser", {"BENCH_METRICS": "1", "BENCH_REFERENCE": "1"}),
        ("before: suite, no metrics layer", "SuiteStreamUser", {"BENCH_METRICS": "0", "BENCH_REFERENCE": "1"}),
        ("before: bare FastHttpUser loop", "BareStreamUser", {"BENCH_METRICS": "0", "BENCH_REFERENCE": "1"}),
    ],
    "nonstream": [
        ("suite + metrics", "SuiteNonStreamUser", {"BENCH_METRICS": "1"}),
        ("suite, no metrics layer", "SuiteNonStreamUser", {"BENCH_METRICS": "0"}),
        ("bare FastHttpUser loop", "BareNonStreamUser", {"BENCH_METRICS": "0"}),
    ],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per Locust run (default 15)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds left out at the start (default 5)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--tokens", type=int, default=64, help="max_tokens of every call (default 64)")
    ap.add_argument("--only", choices=sorted(VARIANTS), action="append", help="repeatable; default: all")
    args = ap.parse_args()
    need("taskset")
    print(machine(), flush=True)
    kinds = args.only or list(VARIANTS)
    results: dict[tuple[str, str], list[LocustRun]] = {}
    loads: list[float] = []
    with mock(["--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", str(args.tokens)]) as m:
        print(f"mock: {m.shown}", flush=True)
        for rep in range(args.repeat):
            for kind in kinds:
                for label, cls, env in VARIANTS[kind]:
                    env = {**env, "BENCH_TOKENS": str(args.tokens)}
                    loads.append(loadavg())
                    r = run_locust(LOCUSTFILE, cls, m.base_url, users=args.users, duration_s=args.duration,
                                   warmup_s=args.warmup, env=env, mock_pid=m.proc.pid)  # fmt: skip
                    results.setdefault((kind, label), []).append(r)
                    s = r.probe["steady"]
                    print(f"[{rep + 1}/{args.repeat}] {kind:9} {label:24} {r.rate():8.1f}/s  cpu {r.cpu():.2f}  "
                          f"per cpu-s {r.rate() / max(r.cpu(), 1e-9):8.1f}  fail {s['failures']}  "
                          f"mock cpu {r.mock_cpu:.2f}  load {loads[-1]:.2f}", flush=True)  # fmt: skip
    print()
    print(f"{machine()}; load average during the runs: min {min(loads):.2f}, median {statistics.median(loads):.2f}, "
          f"max {max(loads):.2f}")  # fmt: skip
    print()
    print(
        "| scenario | variant | calls/s: best (median) | calls/s per Locust CPU-second: best (median) "
        "| tokens/s per CPU-second (median) | Locust CPU | mock CPU | failures | ratio to bare (median per CPU-s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    notes = []
    for kind in kinds:
        per_cpu = {lab: [r.rate() / max(r.cpu(), 1e-9) for r in results[(kind, lab)]] for lab, _, _ in VARIANTS[kind]}
        bare = statistics.median(next(v for k, v in per_cpu.items() if "bare" in k))
        for label, _cls, _env in VARIANTS[kind]:
            runs = results[(kind, label)]
            rates = [r.rate() for r in runs]
            pc = per_cpu[label]
            b, md = best_median(rates)
            pb, pm = best_median(pc)
            toks = f"{pm * args.tokens:,.0f}" if kind.startswith("stream") else "-"
            fails = sum(r.probe["steady"]["failures"] for r in runs)
            cpu = statistics.median(r.cpu() for r in runs)
            mock_cpu = statistics.median(r.mock_cpu for r in runs)
            print(f"| {kind} {args.tokens} tokens | {label} | {b:,.0f} ({md:,.0f}) | **{pb:,.0f}** ({pm:,.0f}) "
                  f"| {toks} | {cpu:.0%} | {mock_cpu:.0%} | {fails} | {pm / bare:.2f} |")  # fmt: skip
        shares: dict[str, list[float]] = {}
        for r in results[(kind, VARIANTS[kind][0][0])]:
            for name, v in r.probe.get("listeners_cpu", {}).items():
                shares.setdefault(name, []).append(v["share"])
        if shares:
            each = ", ".join(f"{k} {statistics.median(v):.1%}" for k, v in shares.items())
            notes.append(f"{kind}: CPU share of each request listener in the suite + metrics runs (median): {each}")
        m_on = statistics.median(per_cpu[VARIANTS[kind][0][0]])
        m_off = statistics.median(per_cpu[VARIANTS[kind][1][0]])
        notes.append(f"{kind}: metrics layer overhead = 1 - (suite + metrics) / (suite, no metrics) = "
                     f"{1 - m_on / m_off:.1%}; suite / bare loop = {m_on / bare:.2f}")  # fmt: skip
    print()
    print("\n".join(notes))
    print("\ncommand of one run, as run:", results[(kinds[0], VARIANTS[kinds[0]][0][0])][0].command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
