"""System calls per request of the chat suite (the Locust process, not the mock), counted with ``strace -f -c``.

On this VM a system call costs 1-3 µs (a failed ``recv`` with its ``OSError``: 2.75 µs; ``time.thread_time()``:
3 µs), which callgrind does not count: this shows what a change to the request path saves in the kernel. It
runs ``locust -f bench/locustfile_chat.py`` as ``bench/k6_compare.py --only capacity`` does (the mock on core 0
sending 64 tokens at once, ``PROMPTS=short``, ``SMOKE=false``, no thresholds, 100 Users) under ``strace -f -c``
for ``--duration`` seconds at ``--rate`` streamed arrivals/s, and prints each system call made more than 0.05
times per request event (errors apart). Start-up's file system calls (``newfstatat``, ``openat``, ``read``...) are
in the counts, spread over the requests.

``--tree DIR`` measures another checkout with this venv (e.g. ``git archive`` of main).

Usage: python bench/syscalls_per_request.py [--rate 1000] [--duration 10] [--tree DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN, CLIENT_CORE, ROOT, machine, mock


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--tree", type=Path, default=ROOT)
    args = ap.parse_args()
    if shutil.which("strace") is None:
        print("strace is not installed (apt-get install strace)", file=sys.stderr)
        return 2
    tree = args.tree.resolve()
    with mock(["--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", "64"]) as m, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "strace.txt"
        env = dict(os.environ, STREAM_RPS=f"{args.rate:g}", NONSTREAM_RPS="0", MAX_TOKENS="64", BASE=m.base_url,
                   PROMPTS="short", SMOKE="false", THRESHOLDS="", BENCH_OUT=f"{tmp}/probe.json",
                   BENCH_WARMUP_S="3", PYTHONPATH=str(tree))  # fmt: skip
        cmd = ["strace", "-f", "-c", "-o", str(out), "taskset", "-c", CLIENT_CORE, str(BIN / "locust"), "-f",
               "bench/locustfile_chat.py", "--headless", "--host", m.base_url, "-u", "100", "-r", "100",
               "-t", f"{args.duration}s", "--stop-timeout", "5", "--only-summary", "--loglevel", "WARNING"]  # fmt: skip
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
        probe_file = Path(tmp) / "probe.json"
        if not probe_file.exists():
            print(f"locust wrote no probe output (exit {proc.returncode}):\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        probe = json.loads(probe_file.read_text())
        n = probe["total_ok"] + probe["total_failed"]
        print(machine())
        print(f"tree {tree}, {n} request events ({probe['total_failed']} failed), {args.rate:g} arrivals/s asked")
        for line in out.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit() and n:
                calls, errors = int(parts[3]), (int(parts[4]) if len(parts) == 6 else 0)
                if calls / n > 0.05 or parts[-1] == "total":
                    print(f"{parts[-1]:16} {calls / n:6.2f} per request (errors {errors / n:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
