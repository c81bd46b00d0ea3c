"""``python -m mock_llm.with_mock [--config F] [--unless-env VAR] -- CMD ...``: run a command against the mock.

Starts the built-in mock on 127.0.0.1 and a free port, exports its URL as ``BASE``, ``BASE_URL`` and
``OSIRIS_URL`` (the knobs of the three suites) to the command, runs it, stops the mock, and exits with the
command's exit code. With ``--unless-env VAR``, when VAR is already set (a real target was given) the command
runs alone, without a mock.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from mock_llm.launch import MockProcess

URL_VARS = ("BASE", "BASE_URL", "OSIRIS_URL")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mock_llm.with_mock", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML settings of the mock (see mock_llm/default.yaml)")
    parser.add_argument("--unless-env", metavar="VAR", help="when VAR is set, run CMD without a mock")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given after --")
    if args.unless_env and os.environ.get(args.unless_env):
        return subprocess.call(cmd)
    with MockProcess(config_file=args.config) as mock:
        env = dict(os.environ)
        for var in URL_VARS:
            env[var] = mock.base_url
        print(f"mock_llm running on {mock.base_url}", flush=True)
        try:
            return subprocess.call(cmd, env=env)
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
