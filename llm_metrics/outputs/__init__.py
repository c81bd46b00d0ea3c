"""What a run produces: console tables, the JSON summary, the HTML report and its charts, the comparison of
two runs, the Prometheus exporter, the web UI's LLM tab and live charts, per-request records."""
