"""Chat-completions load test (seed 003): smoke, non-stream and stream scenarios at open-model arrival rates.

locust -f locustfiles/chat.py                      # web UI
locust -f locustfiles/chat.py --headless -u 50     # CI; knobs: BASE MODEL NONSTREAM_RPS STREAM_RPS ...
"""

from locust import events

from llm_metrics.hooks import install_metrics
from llm_users.chat.users import ChatUser, install_chat


class ChatCompletionsUser(ChatUser):
    """One pre-allocated virtual user of the open model (k6: preAllocatedVUs); -u sets how many."""


install_chat(events)
install_metrics(events, suite="chat", default_thresholds="conf/thresholds/chat.yaml")
