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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN, CLIENT_CORE, ROOT, machine, mock


def run(tree: Path, base: str, calls: int, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    """One callgrind run of the suite until ``calls`` request events; its Ir, calls, arrivals issued and dropped."""
    out, probe, summary = tmp / f"cg.{calls}", tmp / f"probe.{calls}.json", tmp / f"summary.{calls}.json"
    rate = str(args.rate)
    env = {
        **os.environ,
        "STREAM_RPS": rate if args.stream else "0",
        "NONSTREAM_RPS": "0" if args.stream else rate,
        "MAX_TOKENS": "64", "BASE": base, "PROMPTS": "short", "SMOKE": "false", "THRESHOLDS": "",
        "BENCH_OUT": str(probe), "BENCH_WARMUP_S": "0", "BENCH_STOP_AFTER": str(calls),
        "SUMMARY_JSON": str(summary), "PYTHONPATH": str(tree),
    }  # fmt: skip
    limit = max(60, round(calls / args.rate * 3) + 60)
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
    return {"ir": int(m.group(1)), "calls": done, "failed": p["total_failed"], "arrivals": arrivals}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=600)
    ap.add_argument("--base-calls", type=int, default=100)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--nonstream", dest="stream", action="store_false")
    ap.add_argument("--tree", type=Path, default=ROOT)
    args = ap.parse_args()
    tree = args.tree.resolve()
    with mock(["--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", "64"]) as m, tempfile.TemporaryDirectory() as t:
        short = run(tree, m.base_url, args.base_calls, args, Path(t))
        long = run(tree, m.base_url, args.calls, args, Path(t))
    per_call = (long["ir"] - short["ir"]) / (long["calls"] - short["calls"])
    print(machine())
    print(f"tree {tree}, {'streamed' if args.stream else 'non-streamed'}, {args.rate:g} arrivals/s, {args.users} Users")
    for name, r in (("short", short), ("long", long)):
        print(f"{name}: Ir {r['ir']:,} calls {r['calls']} failed {r['failed']} arrivals {json.dumps(r['arrivals'])}")
    print(f"instructions per call: {per_call:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
