"""``python -m llm_metrics.compare``: the command of ``llm_metrics.outputs.compare``, kept at its documented name."""

import sys

from llm_metrics.outputs.compare import main

if __name__ == "__main__":
    sys.exit(main())
