"""``python -m mock_llm``: load the settings (exit status 2 with the error on a bad one) and serve."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import yaml

from mock_llm import cli, server
from mock_llm.config import ConfigError, load, to_dict


def main(argv: Sequence[str] | None = None) -> int:
    try:
        ns, overrides = cli.parse(argv)
        cfg = load(ns.config, overrides)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    if ns.print_config:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return 0
    try:
        server.run(cfg, ns.port_file)
    except OSError as err:
        print(f"mock_llm: cannot listen on {cfg.host}:{cfg.port}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
