"""Run a distributed test on this machine: a headless master plus N local workers (``make distributed``).

    python deploy/run_distributed.py --workers 4 -- -u 40 -t 2m          # against the built-in mock
    BASE=https://llm.example.com python deploy/run_distributed.py -w 4 -- -u 40 -t 2m --prometheus-port 9646

* Without a target (no ``BASE``/``BASE_URL`` in the environment, no ``--base``/``-H``/``--host`` among the
  Locust arguments) the built-in mock is started on a free port of 127.0.0.1 and ``BASE`` points at it.
* The master runs ``--headless --expect-workers N`` on a free port of 127.0.0.1 (``--master-port`` to choose);
  every argument after ``--`` goes to the master, which forwards the suite's custom options (rates, thresholds,
  prompts, shapes...) to the workers with each spawn message, so workers need only the locustfile.
* Ends when the master ends: the workers are given ``--worker-grace`` seconds to quit, then stopped; the mock is
  stopped; the exit status is the master's (99 when a threshold failed). Ctrl-C or SIGTERM stops the master
  (which stops the workers) and cleans up the same way.

For several machines, run the same commands by hand (deploy/README.md): the master with
``--master --master-bind-host 0.0.0.0 --expect-workers N``, each worker with ``--worker --master-host HOST``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
TARGET_FLAGS = ("--base", "-H", "--host")
TARGET_ENV = ("BASE", "BASE_URL")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def has_target(locust_args: list[str], env: dict[str, str]) -> bool:
    """True when the run names its target (then no mock is started)."""
    if any(env.get(k) for k in TARGET_ENV):
        return True
    return any(a == f or a.startswith(f + "=") for a in locust_args for f in TARGET_FLAGS)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" in argv:
        cut = argv.index("--")
        ours, locust_args = argv[:cut], argv[cut + 1 :]
    else:
        ours, locust_args = argv, []
    p = argparse.ArgumentParser(
        prog="run_distributed.py",
        description="A headless Locust master plus N local workers (and the built-in mock when no target is given). "
        "Arguments after -- go to the master.",
    )
    p.add_argument(
        "-w", "--workers", type=int, default=int(os.environ.get("WORKERS", "2")), help="workers (env WORKERS)"
    )
    p.add_argument("-f", "--locustfile", default="locustfiles/chat.py", help="locustfile (default locustfiles/chat.py)")
    p.add_argument("--master-port", type=int, default=0, help="master port on 127.0.0.1; 0: a free one")
    p.add_argument("--worker-grace", type=float, default=30.0, help="seconds workers get to quit after the master")
    p.add_argument("--mock-arg", action="append", default=[], help="extra flag for the mock (repeatable)")
    ns = p.parse_args(ours)
    if ns.workers < 1:
        p.error(f"--workers: expected at least 1, got {ns.workers}")
    return ns, locust_args


def stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    ns, locust_args = parse_args(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    locustfile = str(Path(ns.locustfile) if Path(ns.locustfile).is_absolute() else ROOT / ns.locustfile)
    locust = [sys.executable, "-m", "locust", "-f", locustfile]
    port = ns.master_port or free_port()

    mock = None
    if not has_target(locust_args, env):
        sys.path.insert(0, str(ROOT))
        from mock_llm.launch import MockProcess

        mock = MockProcess(args=ns.mock_arg).start()
        env["BASE"] = mock.base_url
        print(f"run_distributed: no BASE given: built-in mock at {mock.base_url}", flush=True)

    procs: list[subprocess.Popen[bytes]] = []
    master = None
    try:
        master_cmd = [
            *locust,
            "--master",
            "--headless",
            "--expect-workers",
            str(ns.workers),
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            *locust_args,
        ]
        print(f"run_distributed: master on 127.0.0.1:{port}, {ns.workers} worker(s)", flush=True)
        master = subprocess.Popen(master_cmd, cwd=ROOT, env=env)

        def _forward(signum: int, _frame: FrameType | None) -> None:
            if master is not None and master.poll() is None:
                master.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, _forward)
        signal.signal(signal.SIGINT, _forward)
        worker_cmd = [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        for _ in range(ns.workers):
            procs.append(subprocess.Popen(worker_cmd, cwd=ROOT, env=env))
        code = master.wait()
        deadline = time.monotonic() + ns.worker_grace
        for w in procs:
            try:
                w.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"run_distributed: worker pid {w.pid} still running: stopping it", flush=True)
        return code
    finally:
        for p in procs:
            stop(p, 5.0)
        if master is not None:
            stop(master, 10.0)
        if mock is not None:
            mock.stop()


if __name__ == "__main__":
    sys.exit(main())
