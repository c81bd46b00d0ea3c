"""LLM gateway load test (seed 000): proxied LLM calls, health, login/refresh and the admin API, run by a
load profile (smoke, load, stress, spike), with the gateway's own metrics and SLOs.

locust -f locustfiles/gateway.py --headless --load-profile smoke        # knobs: BASE_URL API_KEY ADMIN_PASSWORD
locust -f locustfiles/gateway.py --headless --load-profile spike --time-scale 0.05   # a 20x faster rehearsal
Configuration: conf/gateway.yaml (GATEWAY_CONF); SLOs: conf/thresholds/gateway.yaml (THRESHOLDS).
"""

from locust import events

from llm_metrics.hooks import install_metrics
from llm_users.gateway.metrics import gateway_registry
from llm_users.gateway.users import GatewayUser, install_gateway
from shapes.locust_shapes import install_shapes


class GatewayClient(GatewayUser):
    """One client of the gateway (closed model: it waits between tasks); the profile sets how many."""


install_gateway(events)
install_metrics(events, suite="gateway", default_thresholds="conf/thresholds/gateway.yaml", registry=gateway_registry())
install_shapes(globals(), events)
