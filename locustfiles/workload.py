"""Realistic LLM traffic: prompt and answer lengths in the server's tokens, multi-turn conversations, traces.

locust -f locustfiles/workload.py --headless -u 20 -t 1m --input-tokens 1000 --turns 4 --think-time 2
locust -f locustfiles/workload.py --headless --workload trace --trace conf/traces/example.jsonl
locust -f locustfiles/workload.py,locustfiles/capacity.py --headless     # the highest load meeting the SLOs
Knobs: WORKLOAD INPUT_TOKENS OUTPUT_TOKENS TURNS FOLLOWUP_TOKENS THINK_TIME RATE TRACE ...; SLOs: THRESHOLDS
"""

from locust import events

from llm_metrics.hooks import install_metrics
from llm_users.common.security import install_security
from llm_users.workload.users import WorkloadUser, install_workload, workload_registry


class WorkloadChatUser(WorkloadUser):
    """One virtual user: a conversation at a time (closed), or arrivals and trace records (open, trace)."""


install_security(events)  # first: its start-up checks run before the other listeners
install_metrics(
    events, suite="workload", default_thresholds="conf/thresholds/capacity.yaml", registry=workload_registry()
)
install_workload(events)
