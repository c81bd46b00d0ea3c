"""``python -m llm_metrics.report_html``: the command of ``llm_metrics.outputs.report_html``, at its documented
name."""

import sys

from llm_metrics.outputs.report_html import main

if __name__ == "__main__":
    sys.exit(main())
