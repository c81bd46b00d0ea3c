"""Instructions per call of the whole chat suite (``bench/locustfile_chat.py``) under callgrind.

On this shared machine times are noisy; instruction counts are not. This runs the chat suite as
``bench/k6_compare.py --only capacity`` runs it (open model, ``PROMPTS=short``, 64-token answers at once from the
mock pinned to core 0, ``SMOKE=false``, no thresholds), under ``valgrind --tool=callgrind``, twice: until
``--calls`` and until ``--base-calls`` request events (the probe's ``BENCH_STOP_AFTER``), and prints
(Ir of the long run - Ir of the short run) / (difference in calls): the whole process's instructions per call
(dispatcher, task, client, metrics, Locust, gevent), start-up and the summary at quit cancelled out.

Under callgrind the suite runs ~50x slower, so the arrivals are paced to what it serves there: ``--rate``
arrivals/s (default 10) to ``--users`` Users (default 4), so that every arrival finds an idle User (the
dropped arrivals are printed: compare only runs without drops) and no User waits a second for one. The cost of
a dropped arrival (which the saturated runs add, about 0.6 per call at 3,000 arrivals/s) is measured apart:
``bench/dispatch_instructions.py``.

``--tree DIR`` measures another checkout (e.g. ``git archive`` of main) with this venv; that checkout needs
this ``bench/probe.py`` (the budget), copied in.

Usage: python bench/chat_instructions.py [--calls 600] [--base-calls 100] [--stream/--nonstream] [--tree DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN, CLIENT_CORE, ROOT, machine, mock


def run(tree: Path, base: str, calls: int, args: argparse.Namespace, tmp: Path, seconds: int = 0) -> dict[str, Any]:
    """One callgrind run of the suite until ``calls`` request events (or for ``seconds``, at ``--idle-rate``);
    its Ir, calls, arrivals issued and dropped and the seconds its schedule ran."""
    out, probe, summary = tmp / f"cg.{calls}.{seconds}", tmp / f"probe.{calls}.{seconds}.json", tmp / "summary.json"
    rate = str(args.idle_rate if seconds else args.rate)
    env = {
        **os.environ,
        "STREAM_RPS": rate if args.stream else "0",
        "NONSTREAM_RPS": "0" if args.stream else rate,
        "MAX_TOKENS": "64", "BASE": base, "PROMPTS": "short", "SMOKE": "false", "THRESHOLDS": "",
        "BENCH_OUT": str(probe), "BENCH_WARMUP_S": "0",
        "SUMMARY_JSON": str(summary), "PYTHONPATH": str(tree), "BENCH_STOP_AFTER": str(calls or ""),
    }  # fmt: skip
    limit = seconds or max(60, round(calls / args.rate * 3) + 60)
    cmd = ["taskset", "-c", CLIENT_CORE, "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           str(BIN / "python"), str(BIN / "locust"), "-f", "bench/locustfile_chat.py", "--headless",
           "--host", base, "-u", str(args.users), "-r", str(args.users), "-t", f"{limit}s", "--stop-timeout", "5",
           "--only-summary", "--loglevel", "WARNING"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=limit + 600, check=False)
    if not out.exists() or not probe.exists():
        raise RuntimeError(f"no callgrind or probe output (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    m = re.search(r"^(?:summary|totals): (\d+)", out.read_text(errors="replace"), re.M)
    if m is None:
        raise RuntimeError(f"no instruction total in {out}")
    p = json.loads(probe.read_text())
    done = p["total_ok"] + p["total_failed"]
    arrivals = json.loads(summary.read_text()).get("arrivals", {}) if summary.exists() else {}
    summary.unlink(missing_ok=True)
    return {"ir": int(m.group(1)), "calls": done, "failed": p["total_failed"], "arrivals": arrivals,
            "seconds": float(arrivals.get("scheduled_s", 0.0))}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=600)
    ap.add_argument("--base-calls", type=int, default=100)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--nonstream", dest="stream", action="store_false")
    ap.add_argument("--tree", type=Path, default=ROOT)
    ap.add_argument("--idle", default="", help="S1,S2: also two runs of S1 and S2 seconds at --idle-rate")
    ap.add_argument("--idle-rate", type=float, default=0.2)
    args = ap.parse_args()
    tree = args.tree.resolve()
    with mock(["--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", "64"]) as m, tempfile.TemporaryDirectory() as t:
        runs = {"short": run(tree, m.base_url, args.base_calls, args, Path(t))}
        runs["long"] = run(tree, m.base_url, args.calls, args, Path(t))
        if args.idle:
            s1, s2 = (int(x) for x in args.idle.split(","))
            runs["idle1"] = run(tree, m.base_url, 0, args, Path(t), s1)
            runs["idle2"] = run(tree, m.base_url, 0, args, Path(t), s2)
    print(machine())
    print(f"tree {tree}, {'streamed' if args.stream else 'non-streamed'}, {args.rate:g} arrivals/s, {args.users} Users")
    for name, r in runs.items():
        print(f"{name}: Ir {r['ir']:,} calls {r['calls']} failed {r['failed']} scheduled_s {r['seconds']} "
              f"arrivals {json.dumps(r['arrivals'].get('scenarios'))}")  # fmt: skip
    short, long = runs["short"], runs["long"]
    d_ir, d_calls, d_s = long["ir"] - short["ir"], long["calls"] - short["calls"], long["seconds"] - short["seconds"]
    print(f"instructions per call: {d_ir / d_calls:,.0f}")
    if args.idle:
        i1, i2 = runs["idle1"], runs["idle2"]
        # the idle runs' few calls (--idle-rate) are counted at the per-call figure found without a correction
        per_s = (i2["ir"] - i1["ir"] - (i2["calls"] - i1["calls"]) * d_ir / d_calls) / (i2["seconds"] - i1["seconds"])
        print(f"instructions per second of schedule with no calls (timers, monitors): {per_s:,.0f}")
        print(f"instructions per call, the {d_s:.1f} s more of the long run's schedule at that rate taken out: "
              f"{(d_ir - per_s * d_s) / d_calls:,.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
