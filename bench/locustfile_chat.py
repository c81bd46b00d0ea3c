"""The chat suite exactly as ``locustfiles/chat.py`` runs it (open model, seed 003's knobs), plus the bench probe.

Used by bench/k6_compare.py to set the suite beside k6 on the same scenarios; the probe (bench/probe.py)
counts every request event, the smoke requests included (SMOKE=false leaves them out); it does not time the
other listeners (``time_listeners=False``: that timing costs the process about 6% of a streamed call's CPU, and
nothing here reads it).
"""

from locust import events

from bench.probe import install_probe
from llm_metrics.hooks import install_metrics
from llm_users.chat.users import ChatUser, install_chat


class ChatCompletionsUser(ChatUser):
    """One pre-allocated virtual user of the open model (k6: preAllocatedVUs); -u sets how many."""


install_chat(events)
install_metrics(events, suite="chat", default_thresholds="conf/thresholds/chat.yaml")
install_probe(events, time_listeners=False)
