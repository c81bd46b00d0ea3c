"""Sidecar load test (seed 002): /generate + /metrics, read-heavy /health + /metrics, and trade proposals.

locust -f locustfiles/sidecar.py --class-picker                    # web UI: pick the User classes
locust -f locustfiles/sidecar.py --headless -u 10 -t 1m SidecarReadUser   # one class by name
Knobs: OSIRIS_URL TRADE_PROMPTS SIDECAR_CONF THINK_TIME API_KEY ...; SLOs: conf/thresholds/sidecar.yaml
"""

from locust import events

from llm_metrics.hooks import install_metrics
from llm_users.sidecar.users import SidecarLoadBase, SidecarReadBase, SidecarTradeBase, install_sidecar


class SidecarLoadUser(SidecarLoadBase):
    """The seed's default script: POST /generate with a sample prompt, then GET /metrics (checked)."""


class SidecarReadUser(SidecarReadBase):
    """Read-heavy: GET /health, then GET /metrics (checked)."""


class SidecarTradeUser(SidecarTradeBase):
    """Write-heavy: POST /propose_trade_adjustments/ with the prompts of conf/prompts.json."""


install_sidecar(events)
install_metrics(events, suite="sidecar", default_thresholds="conf/thresholds/sidecar.yaml")
